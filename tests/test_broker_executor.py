from __future__ import annotations

import numpy as np
import pytest

from sorte.config import BrokerSettings, RiskSettings
from sorte.runtime.broker import PaperBroker
from sorte.runtime.executor import Executor
from sorte.runtime.values import BUY, SELL, Bar, Decision, Order


def bar(seq, o, h, lo, c, symbol="X", ts=None):
    return Bar(symbol, seq, float(ts if ts is not None else seq * 60), o, h, lo, c, 1000.0)


def decision(side, seq=0, price=100.0, symbol="X", sl=0.0, tp=0.0, hold=5.0, ts=None):
    return Decision(
        symbol, seq, float(ts if ts is not None else seq * 60 + 60), side, 0.9, "momentum", "test", price, sl, tp, hold
    )


def make(fee_bps=0.0, slippage_bps=0.0, allow_short=True, **risk):
    bs = BrokerSettings(fee_bps=fee_bps, slippage_bps=slippage_bps, allow_short=allow_short, initial_cash=10_000)
    rs = RiskSettings(**{"position_fraction": 0.5, "max_position_fraction": 0.5, "max_loss_per_trade": 1.0, **risk})
    broker = PaperBroker(bs)
    return broker, Executor(broker, rs, bs)


def test_market_order_fills_at_next_open_with_slippage_and_fee():
    broker, ex = make(fee_bps=10, slippage_bps=20)
    broker.on_bar(bar(0, 100, 101, 99, 100))
    report = ex.on_decision(decision(BUY, 0))
    assert [o.purpose for o in report.orders] == ["open"]
    assert broker.positions == {}  # nothing fills on the decision bar
    fills = broker.on_bar(bar(1, 102, 103, 101, 102))
    price = 102 * 1.002
    assert fills[0].price == pytest.approx(price)
    qty = fills[0].qty
    assert qty == pytest.approx(5000 / 100, rel=1e-6)  # sized on the decision price
    assert fills[0].fee == pytest.approx(qty * price * 0.001)
    assert broker.cash == pytest.approx(10_000 - qty * price - qty * price * 0.001)


def test_client_order_id_comes_from_strategy_and_decision_sequence():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    order = ex.on_decision(decision(BUY, 0)).orders[0]
    assert order.client_order_id == "momentum:X:0:open"
    # the same decision again while its order is pending produces no second order
    assert ex.on_decision(decision(BUY, 0)).skipped == "order pending"
    assert len(broker.open_orders()) == 1


def test_opposite_signal_closes_then_reverses():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    ex.on_decision(decision(BUY, 0))
    broker.on_bar(bar(1, 100, 100, 100, 100))
    report = ex.on_decision(decision(SELL, 1, ts=10_000))
    assert [o.purpose for o in report.orders] == ["close", "open"]
    fills = broker.on_bar(bar(2, 110, 110, 110, 110))
    assert [f.purpose for f in fills] == ["close", "open"]
    assert fills[0].realized_pnl == pytest.approx(50 * 10)
    assert broker.positions["X"].qty < 0


def test_same_side_signal_does_not_pyramid():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    ex.on_decision(decision(BUY, 0))
    broker.on_bar(bar(1, 100, 100, 100, 100))
    assert ex.on_decision(decision(BUY, 1)).skipped == "already positioned"


def test_minimum_hold_blocks_a_signal_exit_but_not_a_stop():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100, ts=0))
    ex.on_decision(decision(BUY, 0, sl=0.05, hold=90, ts=1))
    broker.on_bar(bar(1, 100, 100, 100, 100, ts=10))  # filled at t=10, held until t=100
    assert broker.positions["X"].hold_until == 100
    report = ex.on_decision(decision(SELL, 1, ts=50))
    assert report.skipped.startswith("minimum hold") and not report.orders
    fills = broker.on_bar(bar(2, 99, 99, 90, 92, ts=60))  # the stop ignores the hold
    assert fills[0].purpose == "stop_loss" and fills[0].price == pytest.approx(95)
    assert "X" not in broker.positions


def test_stop_loss_fills_at_open_when_the_bar_gaps_through():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    ex.on_decision(decision(BUY, 0, sl=0.02, tp=0.05))
    broker.on_bar(bar(1, 100, 100, 100, 100))
    fills = broker.on_bar(bar(2, 90, 91, 89, 90))
    assert fills[0].purpose == "stop_loss" and fills[0].price == 90


def test_take_profit_and_the_conservative_both_touched_rule():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    ex.on_decision(decision(BUY, 0, sl=0.02, tp=0.05))
    broker.on_bar(bar(1, 100, 100, 100, 100))
    fills = broker.on_bar(bar(2, 100, 106, 99, 105))
    assert fills[0].purpose == "take_profit" and fills[0].price == pytest.approx(105)
    broker2, ex2 = make()
    broker2.on_bar(bar(0, 100, 100, 100, 100))
    ex2.on_decision(decision(BUY, 0, sl=0.02, tp=0.05))
    broker2.on_bar(bar(1, 100, 100, 100, 100))
    both = broker2.on_bar(bar(2, 100, 106, 97, 101))
    assert both[0].purpose == "stop_loss"


def test_short_stops_mirror_long_ones():
    broker, ex = make()
    broker.on_bar(bar(0, 100, 100, 100, 100))
    ex.on_decision(decision(SELL, 0, sl=0.02, tp=0.05))
    broker.on_bar(bar(1, 100, 100, 100, 100))
    assert broker.positions["X"].stop_price == pytest.approx(102)
    assert broker.positions["X"].take_price == pytest.approx(95)
    fills = broker.on_bar(bar(2, 101, 103, 100, 102))
    assert fills[0].purpose == "stop_loss" and fills[0].side == BUY


def test_shorting_disabled_only_closes():
    broker, ex = make(allow_short=False)
    broker.on_bar(bar(0, 100, 100, 100, 100))
    assert ex.on_decision(decision(SELL, 0)).skipped == "shorting disabled"
    assert not broker.open_orders()


def test_limit_orders_fill_through_the_limit_or_expire():
    broker, _ = make()
    broker.submit(Order("a", "X", BUY, 1.0, "limit", "open", "s", 0, 0, limit_price=95, ttl_bars=2))
    assert broker.on_bar(bar(1, 100, 101, 96, 100)) == []
    fills = broker.on_bar(bar(2, 97, 98, 94, 96))
    assert fills[0].price == 95
    broker.submit(Order("b", "X", SELL, 1.0, "limit", "close", "s", 2, 0, limit_price=120, ttl_bars=2))
    broker.on_bar(bar(3, 100, 101, 99, 100))
    broker.on_bar(bar(4, 100, 101, 99, 100))
    assert not broker.has_pending("X")
    broker.submit(Order("c", "X", SELL, 1.0, "limit", "close", "s", 4, 0, limit_price=90, ttl_bars=2))
    gap = broker.on_bar(bar(5, 100, 101, 99, 100))
    assert gap[0].price == 100  # better than the limit: the open


def test_size_is_capped_by_max_loss_per_trade():
    broker, ex = make(max_loss_per_trade=0.01)
    broker.on_bar(bar(0, 100, 100, 100, 100))
    order = ex.on_decision(decision(BUY, 0, sl=0.05)).orders[0]
    # losing 5% of the position may cost at most 1% of 10k equity -> 2000 notional
    assert order.qty * 100 == pytest.approx(2000)


@pytest.mark.parametrize(
    "risk, setup, rule",
    [
        ({"max_open_positions": 1}, "other_position", "max_open_positions"),
        ({"max_gross_exposure": 0.6}, "other_position", "max_gross_exposure"),
        ({"max_position_fraction": 0.5, "position_fraction": 0.5}, "none", None),
        ({"max_drawdown": 0.1}, "drawdown", "max_drawdown"),
        ({"max_correlation": 0.9, "correlation_window": 10}, "correlated", "max_correlation"),
    ],
)
def test_hard_limits_veto_entries(risk, setup, rule):
    broker, ex = make(**risk)
    broker.on_bar(bar(0, 100, 100, 100, 100))
    closes = None
    if setup in ("other_position", "correlated"):
        broker.on_bar(bar(0, 50, 50, 50, 50, symbol="Y"))
        ex.on_decision(decision(BUY, 0, price=50, symbol="Y"))
        broker.on_bar(bar(1, 50, 50, 50, 50, symbol="Y"))
        assert "Y" in broker.positions
    if setup == "correlated":
        base = np.cumprod(1 + np.random.default_rng(1).normal(0, 0.01, 30)) * 100
        closes = {"X": base, "Y": base * 0.5 + 0.001}
    if setup == "drawdown":
        ex.risk.observe_equity(20_000)
    report = ex.on_decision(decision(BUY, 0), closes)
    if rule is None:
        assert report.orders
    else:
        assert report.skipped.startswith(f"risk veto {rule}") and not report.orders
        assert ex.risk.vetoes[rule] == 1


def test_limit_entries_rest_below_the_price_and_expire():
    bs = BrokerSettings(fee_bps=0, slippage_bps=0, order_type="limit", limit_offset_bps=100, limit_ttl_bars=2)
    broker = PaperBroker(bs)
    ex = Executor(broker, RiskSettings(position_fraction=0.5), bs)
    broker.on_bar(bar(0, 100, 100, 100, 100))
    order = ex.on_decision(decision(BUY, 0)).orders[0]
    assert (order.kind, order.limit_price, order.ttl_bars) == ("limit", pytest.approx(99.0), 2)
    assert broker.on_bar(bar(1, 100, 101, 99.5, 100)) == []  # never traded down to 99
    assert broker.on_bar(bar(2, 100, 101, 99.5, 100)) == []
    assert order.status == "expired" and not broker.has_pending("X")
    order2 = ex.on_decision(decision(BUY, 2)).orders[0]
    fills = broker.on_bar(bar(3, 99.5, 100, 98, 99))
    assert fills[0].price == pytest.approx(order2.limit_price) and order2.status == "filled"
