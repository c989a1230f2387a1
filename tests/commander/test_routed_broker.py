"""The active slot's broker on a live account: orders out as intents, the exchange's reports
booked with the paper broker's accounting, an order the exchange never got placed again under
the slot's own epoch (never twice under one id)."""

from __future__ import annotations

from commander.protocol import OrderReport
from commander.routed_broker import RoutedBroker, restamped
from sorte.config import BrokerSettings
from sorte.runtime.values import BUY, Bar, Order

SYMBOL = "BTC/USDT"


def broker(epoch: int = 3) -> RoutedBroker:
    return RoutedBroker(BrokerSettings(initial_cash=10_000, fee_bps=10, slippage_bps=0), epoch)


def bar(seq: int, low: float = 99.0, high: float = 101.0) -> Bar:
    return Bar(SYMBOL, seq, 60.0 * seq, 100.0, high, low, 100.0, 5.0)


def order(cid: str = "e3:10:BTC/USDT:m:open", kind: str = "market", **kw: object) -> Order:
    return Order(cid, SYMBOL, BUY, 2.0, kind, "open", "m", 10, 600.0, **kw)  # type: ignore[arg-type]


def test_an_order_goes_out_as_an_intent_and_is_booked_at_the_exchange_price_and_fee() -> None:
    b = broker()
    o = order(stop_loss=0.05)
    b.submit(o)
    out = b.take_outbox()
    assert [(i.action, i.client_order_id, i.side, i.qty) for i in out] == [("place", o.client_order_id, 1, 2.0)]
    assert b.take_outbox() == []  # handed over once
    assert b.on_bar(bar(11)) == [] and b.has_pending(SYMBOL)  # sent after the last report: not booked yet
    b.deliver([OrderReport(client_order_id=o.client_order_id, status="closed", filled=2.0, average=101.0, fee=0.5)])
    fills = b.on_bar(bar(12))
    assert [(f.qty, f.price, f.fee) for f in fills] == [(2.0, 101.0, 0.5)]
    assert o.status == "filled" and not b.has_pending(SYMBOL)
    assert b.positions[SYMBOL].qty == 2.0 and b.positions[SYMBOL].stop_price == 101.0 * 0.95
    assert b.cash == 10_000 - 2.0 * 101.0 - 0.5 and b.fees_paid == 0.5


def test_an_order_the_exchange_never_got_is_placed_again_under_this_epoch() -> None:
    b = broker(epoch=5)
    old = order("e3:10:BTC/USDT:m:open")
    b.restore(old)  # from the ledger after a restart: no intent for it
    assert b.take_outbox() == []
    b.deliver([OrderReport(client_order_id=old.client_order_id, status="missing")])
    b.on_bar(bar(11))
    assert old.status == "rejected"  # in the ledger: never reached the exchange
    again = b.take_placed()
    assert [o.client_order_id for o in again] == ["e5:10:BTC/USDT:m:open"]
    assert [(i.action, i.client_order_id) for i in b.take_outbox()] == [("place", "e5:10:BTC/USDT:m:open")]
    assert b.open_orders() == again


def test_a_missing_order_of_the_slots_own_epoch_is_asked_for_again_with_its_id() -> None:
    b = broker(epoch=3)
    o = order("e3:10:BTC/USDT:m:open")
    b.restore(o)
    b.deliver([OrderReport(client_order_id=o.client_order_id, status="missing")])
    b.on_bar(bar(11))
    assert [(i.action, i.client_order_id) for i in b.take_outbox()] == [("place", o.client_order_id)]
    assert b.take_placed() == [] and o.status == "new"


def test_a_refused_or_unfilled_order_is_dropped_without_a_fill() -> None:
    b = broker()
    refused, cancelled = order("e3:10:BTC/USDT:m:open"), order("e3:11:BTC/USDT:m:open")
    b.restore(refused)
    b.restore(cancelled)
    b.deliver(
        [
            OrderReport(client_order_id=refused.client_order_id, status="refused", reason="stale epoch"),
            OrderReport(client_order_id=cancelled.client_order_id, status="canceled"),
        ]
    )
    assert b.on_bar(bar(12)) == []
    assert (refused.status, cancelled.status) == ("rejected", "expired")
    assert not b.has_pending(SYMBOL) and b.cash == 10_000


def test_a_resting_limit_order_is_cancelled_at_the_exchange_when_its_life_ends() -> None:
    b = broker()
    o = order(kind="limit", limit_price=95.0, ttl_bars=2)
    b.submit(o)
    b.take_outbox()
    b.deliver([OrderReport(client_order_id=o.client_order_id, status="open")])
    b.on_bar(bar(11))
    assert b.take_outbox() == []
    b.on_bar(bar(12))
    assert [(i.action, i.client_order_id) for i in b.take_outbox()] == [("cancel", o.client_order_id)]
    b.on_bar(bar(13))
    assert b.take_outbox() == []  # asked once
    b.deliver([OrderReport(client_order_id=o.client_order_id, status="canceled", filled=0.5, average=95.0)])
    fills = b.on_bar(bar(14))
    assert [(f.qty, f.price) for f in fills] == [(0.5, 95.0)]  # what did fill before the cancel is booked


def test_a_stop_loss_is_an_exit_order_placed_once_and_booked_when_filled() -> None:
    b = broker(epoch=4)
    o = order("e4:10:BTC/USDT:m:open", stop_loss=0.05)
    b.submit(o)
    b.take_outbox()
    b.deliver([OrderReport(client_order_id=o.client_order_id, status="closed", filled=2.0, average=100.0, fee=0.2)])
    b.on_bar(bar(11))
    b.on_bar(bar(12, low=94.0))  # through the stop at 95
    exits = b.take_placed()
    assert [(e.client_order_id, e.side, e.qty, e.purpose) for e in exits] == [
        ("e4:12:BTC/USDT:m:exit", -1, 2.0, "stop_loss")
    ]
    assert [i.client_order_id for i in b.take_outbox()] == ["e4:12:BTC/USDT:m:exit"]
    b.on_bar(bar(13, low=90.0))
    assert b.take_placed() == [] and b.take_outbox() == []  # pending: never a second exit
    b.deliver([OrderReport(client_order_id="e4:12:BTC/USDT:m:exit", status="closed", filled=2.0, average=94.0)])
    (fill,) = b.on_bar(bar(14))
    assert fill.purpose == "stop_loss" and SYMBOL not in b.positions


def test_restamping_keeps_the_decision_and_changes_only_the_epoch() -> None:
    assert restamped("e3:10:BTC/USDT:m:open", 7) == "e7:10:BTC/USDT:m:open"
    assert restamped("m:BTC/USDT:10:open", 7) == "e7:m:BTC/USDT:10:open"


def test_taking_the_role_places_the_missing_orders_again_at_once() -> None:
    b = broker(epoch=6)
    sent, lost = order("e5:10:BTC/USDT:m:open"), order("e5:11:BTC/USDT:m:close")
    b.restore(sent)
    b.restore(lost)
    b.deliver(
        [
            OrderReport(client_order_id=sent.client_order_id, status="open"),
            OrderReport(client_order_id=lost.client_order_id, status="missing"),
        ]
    )
    ((old, new),) = b.place_missing()
    assert old is lost and old.status == "rejected" and new.client_order_id == "e6:11:BTC/USDT:m:close"
    assert [i.client_order_id for i in b.take_outbox()] == ["e6:11:BTC/USDT:m:close"]
    assert b.take_placed() == []  # stored by the slot when it takes the role, not with a step
    assert {o.client_order_id for o in b.open_orders()} == {sent.client_order_id, new.client_order_id}
