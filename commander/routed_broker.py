"""The active slot's broker on a live account: its orders reach the exchange through the
commander, never from the slot (a slot holds no exchange keys and needs no network).

``submit`` books the order as pending and queues an ``OrderIntent``; the runtime commits the
step (the order is in the ledger as "new" before anything is sent), the slot hands the intents
over in ``Done.orders`` and the commander's gateway sends them under the lease epoch. What the
exchange did comes back with the next step (``StepOp.orders``, given to ``deliver``) and
``on_bar`` books it with the paper broker's own accounting, at the exchange's price and fee:
one bookkeeping for backtest, paper and live.

An order the exchange never got (``missing``: the commander or the slot died between the
commit and the send) is placed again under this slot's epoch, with that epoch's id. The old id
is fenced off for good by the gateway, so the order cannot reach the exchange twice.
"""

from __future__ import annotations

import re
from dataclasses import replace

import structlog

from commander.fencing import client_order_id
from commander.protocol import OrderIntent, OrderReport
from sorte.config import BrokerSettings
from sorte.runtime.broker import PaperBroker, exit_order, protective_trigger
from sorte.runtime.values import Bar, Fill, Order, Position

log = structlog.get_logger("sorte.slot.orders")

_EPOCH = re.compile(r"^e\d+:")


def intent(action: str, order: Order) -> OrderIntent:
    return OrderIntent(
        action=action,  # "place" | "cancel", checked by the model
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
        kind=order.kind,
        limit_price=order.limit_price if order.kind == "limit" else None,
    )


def restamped(cid: str, epoch: int) -> str:
    """``cid`` under ``epoch``: the same decision and leg, another epoch."""
    return f"e{epoch}:" + _EPOCH.sub("", cid, count=1)


class RoutedBroker(PaperBroker):
    def __init__(self, settings: BrokerSettings, epoch: int) -> None:
        super().__init__(settings)
        self.epoch = epoch
        self.outbox: list[OrderIntent] = []
        self.reports: dict[str, OrderReport] = {}
        self.placed: list[Order] = []  # orders placed by the broker itself, for the ledger
        self.cancelling: set[str] = set()

    # -- the commander's side ----------------------------------------------------------------
    def deliver(self, reports: list[OrderReport]) -> None:
        """The exchange's view of the open orders, as the gateway saw it before this step."""
        self.reports = {r.client_order_id: r for r in reports}

    def take_outbox(self) -> list[OrderIntent]:
        out, self.outbox = self.outbox, []
        return out

    def take_placed(self) -> list[Order]:
        placed, self.placed = self.placed, []
        return placed

    # -- orders ------------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        self.pending[order.symbol].append(order)
        self.outbox.append(intent("place", order))

    def restore(self, order: Order) -> None:
        """An open order of the ledger: the exchange has it, or the next report says ``missing``."""
        self.pending[order.symbol].append(order)

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Book what the exchange did with this symbol's orders, then watch the position's
        protective levels (an exit is an order like any other: it fills on a later bar)."""
        fills: list[Fill] = []
        for order in list(self.pending.get(bar.symbol, [])):
            fill = self._settle(bar, order)
            if fill is not None:
                fills.append(fill)
        pos = self.positions.get(bar.symbol)
        if pos is not None and (pos.stop_price or pos.take_price) and not self.pending.get(bar.symbol):
            self._protect(bar, pos)
        self.last_price[bar.symbol] = bar.close
        return fills

    def _settle(self, bar: Bar, order: Order) -> Fill | None:
        report = self.reports.get(order.client_order_id)
        if report is None:
            return None  # sent after the last look at the exchange: next step
        if report.status == "missing":
            self._place_again(order)
            return None
        if not report.final:
            self._age(order)
            return None
        self.pending[order.symbol].remove(order)
        self.cancelling.discard(order.client_order_id)
        if report.filled <= 0 or report.average is None:
            order.status = "expired" if report.status in ("canceled", "expired") else "rejected"
            log.info("order_" + order.status, client_order_id=order.client_order_id, reason=report.reason)
            return None
        order.status = "filled"
        opener = order if order.purpose in ("open", "close") else None
        fill = self._apply(
            order.client_order_id,
            bar,
            order.side,
            report.filled,
            report.average,
            order.purpose,
            order.strategy,
            opener,
        )
        self._charge_fee(fill, report.fee)
        return fill

    def _age(self, order: Order) -> None:
        """A resting limit order lives ``ttl_bars`` bars; then the exchange is asked to cancel it."""
        if order.kind != "limit" or order.ttl_bars <= 0 or order.client_order_id in self.cancelling:
            return
        order.ttl_bars -= 1
        if order.ttl_bars == 0:
            self.cancelling.add(order.client_order_id)
            self.outbox.append(intent("cancel", order))

    def place_missing(self) -> list[tuple[Order, Order]]:
        """When the slot takes its role: every open order the exchange never got is placed
        again now, not a bar later; (old, new) pairs for the slot to store before sending."""
        replaced = []
        for order in self.open_orders():
            report = self.reports.get(order.client_order_id)
            if report is not None and report.status == "missing":
                again = self._place_again(order)
                if again is not None:
                    replaced.append((order, again))
        self.placed.clear()  # stored by the slot itself, not with a step
        return replaced

    def _place_again(self, order: Order) -> Order | None:
        """The exchange never got the order: the same decision, under this slot's epoch."""
        cid = restamped(order.client_order_id, self.epoch)
        if cid == order.client_order_id:  # this epoch's own, not sent yet: ask again
            self.outbox.append(intent("place", order))
            return None
        self.pending[order.symbol].remove(order)
        order.status = "rejected"  # in the ledger: never reached the exchange
        again = replace(order, client_order_id=cid, status="new")
        log.info("order_placed_again", old=order.client_order_id, client_order_id=cid)
        self.placed.append(again)
        self.submit(again)
        return again

    def _protect(self, bar: Bar, pos: Position) -> None:
        purpose = protective_trigger(bar, pos)
        if purpose is None:
            return
        # Decided on this bar, like any order; stored with the step, so a restart finds it
        # pending and never fires a second one.
        cid = client_order_id(self.epoch, bar.seq, bar.symbol, f"{pos.strategy}:exit")
        exit_ = exit_order(bar, pos, cid, purpose)
        self.placed.append(exit_)
        self.submit(exit_)
