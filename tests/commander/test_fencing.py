"""Fencing: only the slot holding the lease at its epoch gets orders to the broker."""

import sqlite3

import pytest

from commander.fencing import FencedBroker, StaleEpoch, client_order_id
from commander.lease import Lease, LeaseError
from sorte.config import BrokerSettings
from sorte.errors import SorteError
from sorte.runtime.broker import PaperBroker
from sorte.runtime.values import BUY, SELL, Bar, Order


def order(seq: int, side: int = BUY, purpose: str = "open") -> Order:
    return Order(f"s:BTC/USDT:{seq}:{purpose}", "BTC/USDT", side, 1.0, "market", purpose, "s", seq, 0.0)


@pytest.fixture
def lease(tmp_path):
    with Lease(tmp_path / "data") as store:
        yield store


def test_client_order_id_is_deterministic_and_epoch_bound():
    assert client_order_id(3, 17, "BTC/USDT") == client_order_id(3, 17, "BTC/USDT")
    assert client_order_id(3, 17, "BTC/USDT") != client_order_id(4, 17, "BTC/USDT")
    assert client_order_id(3, 17, "BTC/USDT") != client_order_id(3, 18, "BTC/USDT")
    assert client_order_id(3, 17, "BTC/USDT") != client_order_id(3, 17, "ETH/USDT")
    assert client_order_id(3, 17, "X", "s:open") != client_order_id(3, 17, "X", "s:close")
    with pytest.raises(LeaseError):
        client_order_id(0, 1, "X")


def test_orders_at_the_current_epoch_are_forwarded_with_an_epoch_id(lease):
    epoch = lease.acquire("blue", expect_epoch=None).epoch
    paper = PaperBroker(BrokerSettings())
    fenced = FencedBroker(paper, lease, "blue", epoch)
    first = order(5)
    fenced.submit(first)
    assert first.client_order_id == client_order_id(epoch, 5, "BTC/USDT", "s:open")
    assert [o.client_order_id for o in paper.open_orders()] == [first.client_order_id]
    assert fenced.has_pending("BTC/USDT")  # the rest of the broker shows through
    fills = fenced.on_bar(Bar("BTC/USDT", 6, 60.0, 100, 101, 99, 100, 1))
    assert [f.client_order_id for f in fills] == [first.client_order_id]
    assert fenced.rejected_stale == 0


def test_a_retried_order_is_forwarded_once(lease):
    epoch = lease.acquire("blue", expect_epoch=None).epoch
    paper = PaperBroker(BrokerSettings())
    fenced = FencedBroker(paper, lease, "blue", epoch)
    first, retry = order(5), order(5)
    assert fenced.submit(first) is None  # the paper broker's submit answers nothing
    assert fenced.submit(retry) is None
    assert retry.client_order_id == first.client_order_id
    assert len(paper.open_orders()) == 1 and fenced.duplicates == 1
    fenced.submit(order(5, SELL, "close"))  # another order of the same decision is not a retry
    assert len(paper.open_orders()) == 2


def test_the_old_slots_late_order_after_a_transfer_is_rejected_and_never_sent(lease, tmp_path):
    epoch = lease.acquire("blue", expect_epoch=None).epoch
    blue_paper, green_paper = PaperBroker(BrokerSettings()), PaperBroker(BrokerSettings())
    blue = FencedBroker(blue_paper, lease, "blue", epoch)
    blue.submit(order(1))
    with Lease(tmp_path / "data") as other:  # the commander, another connection
        new_epoch = other.transfer("blue", "green", epoch).epoch
    green = FencedBroker(green_paper, lease, "green", new_epoch)
    late = order(2)
    with pytest.raises(StaleEpoch, match="green holds the lease at epoch 2") as err:
        blue.submit(late)
    assert isinstance(err.value, SorteError)
    assert late.status == "rejected" and blue.rejected == [late] and blue.rejected_stale == 1
    assert len(blue_paper.open_orders()) == 1  # only the order placed before the hand-over
    with pytest.raises(StaleEpoch):
        blue.submit(order(1))  # even a retry of an order it once sent
    assert blue.rejected_stale == 2 and len(blue_paper.open_orders()) == 1
    green.submit(order(2))
    assert [o.client_order_id for o in green_paper.open_orders()] == [client_order_id(2, 2, "BTC/USDT", "s:open")]


def test_a_slot_that_believes_an_old_epoch_is_rejected_even_as_holder(lease):
    lease.acquire("blue", expect_epoch=None)
    lease.acquire("blue", expect_epoch=1)  # blue took it again: epoch 2
    paper = PaperBroker(BrokerSettings())
    fenced = FencedBroker(paper, lease, "blue", 1)
    with pytest.raises(StaleEpoch):
        fenced.submit(order(1))
    assert paper.open_orders() == []
    fenced.epoch = 2
    fenced.submit(order(1))
    assert len(paper.open_orders()) == 1


def test_no_hand_over_commits_while_an_order_is_being_forwarded(lease, tmp_path):
    epoch = lease.acquire("blue", expect_epoch=None).epoch
    seen = []

    class Broker:
        def submit(self, sent: Order) -> str:
            with Lease(tmp_path / "data", timeout_s=0.05) as commander:
                try:
                    commander.transfer("blue", "green", epoch)
                except sqlite3.OperationalError as exc:
                    seen.append(str(exc))
            return "accepted"

    fenced = FencedBroker(Broker(), lease, "blue", epoch)
    assert fenced.submit(order(1)) == "accepted"
    assert seen == ["database is locked"]
    assert lease.current().holder == "blue" and lease.is_current(epoch)
