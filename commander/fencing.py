"""Fencing: a broker wrapper that places an order only under the current lease epoch.

A slot's ``FencedBroker`` knows the epoch the slot believes it holds. Before an order goes on
to the wrapped broker, the order gets a client order id built from that epoch and its decision
sequence, and the lease store is asked, under its write lock, whether the slot still holds the
lease at that epoch: if not (the lease was handed over, or taken), the order is refused with
``StaleEpoch``, counted in ``rejected_stale`` and never forwarded. Because the check and the
forwarding happen inside one lease transaction, a hand-over cannot commit in between.

An order whose client order id was already forwarded is not forwarded again: a retry returns
the first result. Only the broker's public ``submit`` is wrapped; every other attribute (fills,
positions, equity) is the wrapped broker's.
"""

from __future__ import annotations

from typing import Any

from commander.lease import Lease, LeaseConflict, LeaseError
from sorte.runtime.values import Order


class StaleEpoch(LeaseError):
    """An order was stamped with an epoch that is no longer the slot's: it was not sent."""


def client_order_id(epoch: int, decision_seq: int, symbol: str, tag: str = "") -> str:
    """The id of the order a slot places for one decision at one epoch: the same inputs give
    the same id (a retried order is recognised), another epoch gives another id. ``tag`` tells
    apart orders of the same decision (a close and an open)."""
    if epoch < 1:
        raise LeaseError(f"an order needs a lease epoch >= 1, got {epoch}")
    if decision_seq < 0:
        raise LeaseError(f"a decision sequence is >= 0, got {decision_seq}")
    cid = f"e{epoch}:{decision_seq}:{symbol}"
    return f"{cid}:{tag}" if tag else cid


class FencedBroker:
    def __init__(self, broker: Any, lease: Lease, slot: str, epoch: int) -> None:
        self.broker = broker
        self.lease = lease
        self.slot = slot
        self.epoch = epoch  # what the slot believes; set it again after acquiring or receiving the lease
        self.forwarded: dict[str, Any] = {}  # client order id -> what the broker's submit returned
        self.rejected: list[Order] = []
        self.rejected_stale = 0
        self.duplicates = 0

    def submit(self, order: Order) -> Any:
        """Stamp the order with this slot's epoch and forward it if the epoch is current.

        Raises StaleEpoch (the order's status becomes "rejected") when the slot no longer
        holds the lease at its epoch. A second order with an id already forwarded is not sent
        again; the first result is returned."""
        if not order.client_order_id.startswith(f"e{self.epoch}:"):
            tag = f"{order.strategy}:{order.purpose}" if order.strategy else order.purpose
            order.client_order_id = client_order_id(self.epoch, order.created_seq, order.symbol, tag)
        cid = order.client_order_id
        try:
            with self.lease.guard(self.slot, self.epoch):
                if cid in self.forwarded:
                    self.duplicates += 1
                    return self.forwarded[cid]
                result = self.broker.submit(order)
                self.forwarded[cid] = result
                return result
        except LeaseConflict as exc:
            self.rejected_stale += 1
            self.rejected.append(order)
            order.status = "rejected"
            raise StaleEpoch(f"order {cid} not sent: {exc}") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.broker, name)
