from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sorte.config import REPO_ROOT, BrokerSettings, RiskSettings
from sorte.runtime import demo
from sorte.runtime.backtest import run_backtest
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import load_cascade, single_strategy_cascade
from sorte.runtime.clock import SimClock
from sorte.runtime.control import RuntimeControl
from sorte.runtime.engine import Runtime
from sorte.runtime.executor import Executor
from sorte.runtime.feed import ReplayFeed

STRATEGIES = REPO_ROOT / "strategies"
NO_STOPS = {"stop_loss": 0, "take_profit": 0}


def fills_key(fills):
    return [(f.client_order_id, f.seq, f.side, round(f.qty, 9), round(f.price, 9), f.purpose) for f in fills]


def stream(cascade, frames, bs, rs):
    """The live runtime over the same bars: SimClock, ReplayFeed, bar by bar."""
    broker = PaperBroker(bs)
    runtime = Runtime(
        cascade, ReplayFeed(frames, SimClock()), broker, Executor(broker, rs, bs), SimClock(), RuntimeControl()
    )
    collected = []
    runtime.listener = lambda kind, payload: collected.append(payload) if kind == "fill" else None
    summary = asyncio.run(runtime.run())
    return collected, summary, broker


def test_same_input_same_trades(goog, frictionless):
    bs, rs = frictionless
    runs = [
        run_backtest(single_strategy_cascade("momentum", STRATEGIES, NO_STOPS), {"GOOG": goog}, bs, rs)
        for _ in range(2)
    ]
    assert fills_key(runs[0].fills) == fills_key(runs[1].fills)
    assert runs[0].metrics == runs[1].metrics
    assert runs[0].metrics.trades == 93


@pytest.mark.parametrize("name", ["momentum", "mean_reversion", "breakout"])
def test_event_loop_equals_visiting_every_bar(name, eurusd):
    bs = BrokerSettings(fee_bps=10, slippage_bps=5, allow_short=True)
    rs = RiskSettings(max_drawdown=0.2)
    tight = {"stop_loss": 0.002, "take_profit": 0.003}  # hourly FX moves little
    fast = run_backtest(single_strategy_cascade(name, STRATEGIES, tight), {"E": eurusd}, bs, rs)
    full = run_backtest(single_strategy_cascade(name, STRATEGIES, tight), {"E": eurusd}, bs, rs, scan_all=True)
    assert fills_key(fast.fills) == fills_key(full.fills)
    assert np.array_equal(fast.equity.to_numpy(), full.equity.to_numpy())
    assert any(f.purpose in ("stop_loss", "take_profit") for f in fast.fills)


@pytest.mark.parametrize("name", ["momentum", "mean_reversion"])
def test_backtest_and_live_runtime_share_one_code_path(name, goog):
    """The backtester and the bar-by-bar runtime produce the same fills on the same bars."""
    bs = BrokerSettings(fee_bps=10, slippage_bps=5, allow_short=True)
    rs = RiskSettings()
    frames = {"GOOG": goog.head(1200)}
    bt = run_backtest(single_strategy_cascade(name, STRATEGIES), frames, bs, rs)
    live_fills, summary, broker = stream(single_strategy_cascade(name, STRATEGIES), frames, bs, rs)
    assert len(bt.fills) > 10
    assert fills_key(bt.fills) == fills_key(live_fills)
    assert bt.metrics.final_equity == pytest.approx(summary.final_equity, abs=0.01)


def test_multi_symbol_cascade_backtest_matches_runtime():
    frames = demo.generate(4, 500, seed=3)
    bs, rs = BrokerSettings(), RiskSettings()
    bt = run_backtest(load_cascade(STRATEGIES), frames, bs, rs)
    live_fills, summary, _ = stream(load_cascade(STRATEGIES), frames, bs, rs)
    assert len(bt.fills) >= 4
    assert fills_key(bt.fills) == fills_key(live_fills)
    assert {f.symbol for f in bt.fills} >= {"ALPHA", "BRAVO"}


def test_metrics_are_consistent_with_trades_and_equity(goog, frictionless):
    bs, rs = frictionless
    r = run_backtest(single_strategy_cascade("momentum", STRATEGIES, NO_STOPS), {"GOOG": goog}, bs, rs)
    m = r.metrics
    assert m.bars == len(goog) == len(r.equity)
    assert m.final_equity == pytest.approx(r.equity.iloc[-1], abs=0.01)
    assert m.total_return_pct == pytest.approx(100 * (r.equity.iloc[-1] / 10_000 - 1), abs=1e-3)
    closed = [t for t in r.trades if t.exit_seq is not None]
    assert m.trades == len(closed)
    assert m.win_rate_pct == pytest.approx(100 * sum(t.pnl > 0 for t in closed) / len(closed), abs=0.01)
    assert 0 < m.exposure_pct <= 100 and m.max_drawdown_pct > 0
    # trades alternate sides and each exit is the next entry
    for a, b in zip(closed, closed[1:], strict=False):
        assert a.side != b.side and a.exit_seq == b.entry_seq


def test_progress_reaches_the_end(goog, frictionless):
    seen = []
    run_backtest(
        single_strategy_cascade("momentum", STRATEGIES),
        {"G": goog},
        *frictionless,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (len(goog), len(goog))
    assert len(seen) > 10


def test_trade_pnl_includes_both_fees_and_matches_the_fills(eurusd):
    bs = BrokerSettings(fee_bps=10, slippage_bps=5, allow_short=True)
    r = run_backtest(
        single_strategy_cascade("momentum", STRATEGIES, {"stop_loss": 0.002, "take_profit": 0.004}),
        {"E": eurusd.head(1500)},
        bs,
        RiskSettings(),
    )
    closed = [t for t in r.trades if t.exit_seq is not None]
    assert len(closed) > 20
    for t in closed:
        side = 1 if t.side == "BUY" else -1
        entry = next(f for f in r.fills if f.seq == t.entry_seq and f.purpose == "open" and f.side == side)
        exit_ = next(
            f for f in r.fills if f.seq == t.exit_seq and f.purpose != "open" and f.side == -side and f.qty == t.qty
        )
        assert t.pnl == pytest.approx(entry.realized_pnl + exit_.realized_pnl)  # -entry fee + (gross - exit fee)
