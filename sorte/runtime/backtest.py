"""Backtester: the runtime's cascade, executor and paper broker over historical bars.

Decisions come from ``Cascade.evaluate_batch`` (the strategy functions over the whole
history at once, identical to the streaming path bar by bar); orders, fills, stops and
risk go through the same Executor and PaperBroker objects as paper and live trading, with
the bars' own timestamps as the clock. Same input, same trades.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel

from sorte.config import BrokerSettings, RiskSettings
from sorte.runtime import risk as riskmath
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import Cascade
from sorte.runtime.data import to_ohlcv
from sorte.runtime.executor import Executor
from sorte.runtime.models import Bar, Decision, Fill, side_name

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Trade:
    symbol: str
    side: str
    qty: float
    entry_seq: int
    entry_ts: float
    entry_price: float
    exit_seq: int | None = None
    exit_ts: float | None = None
    exit_price: float | None = None
    exit_reason: str | None = None
    pnl: float = 0.0
    return_pct: float = 0.0

    @property
    def entry_time(self) -> str:
        return _iso(self.entry_ts)

    @property
    def exit_time(self) -> str | None:
        return None if self.exit_ts is None else _iso(self.exit_ts)

    def as_dict(self) -> dict:
        out = {f: getattr(self, f) for f in self.__slots__}
        out["entry_time"], out["exit_time"] = self.entry_time, self.exit_time
        return out


class BacktestMetrics(BaseModel):
    start_equity: float
    final_equity: float
    total_return_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    var_95_pct: float
    win_rate_pct: float
    trades: int
    exposure_pct: float
    fees: float
    bars: int
    decisions: int


@dataclass
class BacktestResult:
    metrics: BacktestMetrics
    trades: list[Trade]
    fills: list[Fill]
    decisions: list[Decision]
    equity: pd.Series
    stage_pass_rates: dict[str, float] = field(default_factory=dict)


def run_backtest(
    cascade: Cascade,
    data: dict[str, pd.DataFrame],
    broker_settings: BrokerSettings,
    risk_settings: RiskSettings,
    progress: Progress | None = None,
    scan_all: bool = False,
) -> BacktestResult:
    """Backtest ``cascade`` over ``data`` (symbol -> validated frame).

    Each timestamp is handled in two phases, as in the live runtime: first every symbol's
    bar goes to the broker (fills, stops), then the decisions of that timestamp go to the
    executor. The broker only needs to see a bar when it holds a pending order or a
    resting stop that the bar touches; ``scan_all`` feeds it every bar anyway (slower, same
    result, used by tests to prove the shortcut exact).
    """
    if not data:
        raise ValueError("no data to backtest")
    bt = _Loop(cascade, data, broker_settings, risk_settings, scan_all)
    bt.run(progress)
    return bt.result()


class _Loop:
    def __init__(self, cascade, data, broker_settings, risk_settings, scan_all):
        self.cascade, self.scan_all = cascade, scan_all
        self.symbols = sorted(data)
        self.series = {s: to_ohlcv(data[s]) for s in self.symbols}
        self.signals = {s: cascade.evaluate_batch(self.series[s]) for s in self.symbols}
        self.broker = PaperBroker(broker_settings)
        self.executor = Executor(self.broker, risk_settings, broker_settings)
        self.start_cash = broker_settings.initial_cash
        self.corr_window = risk_settings.correlation_window
        ts_all = [self.series[s].ts for s in self.symbols]
        self.timeline = np.unique(np.concatenate(ts_all))
        n, m = len(self.timeline), len(self.symbols)
        self.rows = np.full((m, n), -1, np.int64)  # row of each symbol at each timeline step
        self.tpos = []  # timeline step of each row, per symbol
        for k, ts in enumerate(ts_all):
            pos = np.searchsorted(self.timeline, ts)
            self.rows[k, pos] = np.arange(len(ts))
            self.tpos.append(pos)
        self.last_rows = np.maximum.accumulate(self.rows, axis=1)
        self.closes = np.array(
            [
                np.where(self.last_rows[k] >= 0, self.series[s].close[np.maximum(self.last_rows[k], 0)], 0.0)
                for k, s in enumerate(self.symbols)
            ]
        )
        self.close_lists = self.closes.tolist()
        self.started = [int(np.argmax(lr >= 0)) for lr in self.last_rows]
        self.interesting = np.zeros(n, bool)
        for k, s in enumerate(self.symbols):
            self.interesting[self.tpos[k][self.signals[s].act]] = True
        self.fills: list[Fill] = []
        self.decisions: list[Decision] = []
        self.snap_t: list[int] = []
        self.snap_cash: list[float] = []
        self.snap_qty: list[list[float]] = []

    def run(self, progress: Progress | None) -> None:
        n = len(self.timeline)
        # Steps to visit: bars with a decision, plus those that _schedule pushes (the next
        # bar after an order, the bar where a resting stop triggers).
        wake = list(range(n)) if self.scan_all else np.flatnonzero(self.interesting).tolist()
        heapq.heapify(wake)
        rows = self.rows.tolist()
        ks = list(enumerate(self.symbols))
        lists = {
            s: (o.ts.tolist(), o.open.tolist(), o.high.tolist(), o.low.tolist(), o.close.tolist(), o.volume.tolist())
            for s, o in self.series.items()
        }
        acts = {s: self.signals[s].act for s in self.symbols}
        step = max(1, n // 100)
        next_report = 0
        broker = self.broker
        prev_t = -1
        while wake:
            t = heapq.heappop(wake)
            if t <= prev_t:
                continue
            if progress is not None and t >= next_report:
                progress(t + 1, n)
                next_report = t + step
            self._observe_peak(prev_t, t)
            for k, sym in ks:  # phase 1: bars to the broker
                r = rows[k][t]
                if r < 0:
                    continue
                if self.scan_all or broker.needs_bar(sym):
                    ts, o, h, lo, c, v = lists[sym]
                    got = broker.on_bar(Bar(sym, r, ts[r], o[r], h[r], lo[r], c[r], v[r]))
                    if got:
                        self.fills.extend(got)
                    self._schedule(k, sym, r, wake)
            self._mark(t)
            for k, sym in ks:  # phase 2: decisions to the executor
                r = rows[k][t]
                if r >= 0 and acts[sym][r]:
                    self._decide(k, sym, r, wake)
            self._snapshot(t)
            prev_t = t
        if progress is not None:
            progress(n, n)

    def _schedule(self, k: int, sym: str, r: int, wake: list[int]) -> None:
        o = self.series[sym]
        if self.broker.has_pending(sym) and r + 1 < len(o):
            heapq.heappush(wake, int(self.tpos[k][r + 1]))
        trigger = self.broker.protective_trigger(sym, o.low, o.high, r + 1)
        if trigger is not None:
            heapq.heappush(wake, int(self.tpos[k][trigger]))

    def _mark(self, t: int) -> None:
        last_price, closes = self.broker.last_price, self.close_lists
        for k, sym in enumerate(self.symbols):
            if self.started[k] <= t:
                last_price[sym] = closes[k][t]
        self.executor.risk.observe_equity(self.broker.equity())

    def _observe_peak(self, prev_t: int, t: int) -> None:
        """Feed the risk manager the equity peak of the bars skipped since the last step."""
        if prev_t < 0 or t - prev_t < 2 or not self.broker.positions:
            return
        qty = self.snap_qty[-1]
        if len(qty) == 1:  # one symbol: the peak is at the segment's max or min close
            seg = self.close_lists[0][prev_t + 1 : t]
            peak = self.snap_cash[-1] + qty[0] * (max(seg) if qty[0] > 0 else min(seg))
        else:
            peak = float((self.snap_cash[-1] + np.asarray(qty) @ self.closes[:, prev_t + 1 : t]).max())
        self.executor.risk.observe_equity(peak)

    def _decide(self, k: int, sym: str, r: int, wake: list[int]) -> None:
        o = self.series[sym]
        decision = self.cascade.decision_at(self.signals[sym], sym, r, o, r)
        self.decisions.append(decision)
        closes = None
        if len(self.symbols) > 1:
            w = self.corr_window
            closes = {
                s: self.series[s].close[max(0, lr - w + 1) : lr + 1]
                for s, lr in zip(self.symbols, self.last_rows[:, self.tpos[k][r]], strict=True)
                if lr >= 0
            }
        report = self.executor.on_decision(decision, closes)
        if report.orders and r + 1 < len(o):
            heapq.heappush(wake, int(self.tpos[k][r + 1]))

    def _snapshot(self, t: int) -> None:
        self.snap_t.append(t)
        self.snap_cash.append(self.broker.cash)
        pos = self.broker.positions
        self.snap_qty.append([pos[s].qty if s in pos else 0.0 for s in self.symbols])

    def result(self) -> BacktestResult:
        n, m = len(self.timeline), len(self.symbols)
        cash = np.full(n, self.start_cash)
        qty = np.zeros((m, n))
        if self.snap_t:
            which = np.searchsorted(self.snap_t, np.arange(n), side="right") - 1
            seen = which >= 0
            cash[seen] = np.asarray(self.snap_cash)[which[seen]]
            qty[:, seen] = np.asarray(self.snap_qty).T[:, which[seen]]
        equity = cash + (qty * self.closes).sum(axis=0)
        in_market = (qty != 0).any(axis=0)
        index = pd.to_datetime(self.timeline, unit="s", utc=True)
        trades = trades_from_fills(self.fills)
        metrics = _metrics(equity, in_market, trades, self.broker, self.start_cash, self.timeline, len(self.decisions))
        rates = {name: st.pass_rate for name, st in self.cascade.stats.items()}
        return BacktestResult(metrics, trades, self.fills, self.decisions, pd.Series(equity, index=index), rates)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def trades_from_fills(fills: list[Fill]) -> list[Trade]:
    """Pair entry and exit fills per symbol into round-trip trades (open ones last)."""
    open_trades: dict[str, Trade] = {}
    done: list[Trade] = []
    for f in fills:
        current = open_trades.get(f.symbol)
        if current is not None and (f.side > 0) != (current.side == "BUY"):
            current.exit_seq, current.exit_ts = f.seq, f.ts
            current.exit_price, current.exit_reason = f.price, f.purpose
            direction = 1 if current.side == "BUY" else -1
            current.pnl = direction * (f.price - current.entry_price) * current.qty - f.fee
            current.return_pct = 100 * direction * (f.price / current.entry_price - 1)
            done.append(current)
            del open_trades[f.symbol]
        elif f.purpose == "open":
            open_trades[f.symbol] = Trade(
                symbol=f.symbol,
                side=side_name(f.side),
                qty=f.qty,
                entry_seq=f.seq,
                entry_ts=f.ts,
                entry_price=f.price,
                pnl=-f.fee,
            )
    done.sort(key=lambda t: (t.entry_seq, t.symbol))
    return done + sorted(open_trades.values(), key=lambda t: (t.entry_seq, t.symbol))


def _metrics(equity, in_market, trades, broker, start, timeline, n_decisions) -> BacktestMetrics:
    rets = riskmath.returns_from_equity(equity)
    spacing = float(np.median(np.diff(timeline))) if len(timeline) > 1 else 86_400.0
    ppy = riskmath.periods_per_year(spacing)
    closed = [t for t in trades if t.exit_seq is not None]
    wins = sum(1 for t in closed if t.pnl > 0)
    final = float(equity[-1]) if len(equity) else start
    return BacktestMetrics(
        start_equity=start,
        final_equity=round(final, 2),
        total_return_pct=round(100 * (final / start - 1), 4),
        sharpe=round(riskmath.sharpe(rets, ppy), 4),
        sortino=round(riskmath.sortino(rets, ppy), 4),
        max_drawdown_pct=round(100 * riskmath.max_drawdown(equity), 4),
        var_95_pct=round(100 * riskmath.historical_var(rets), 4),
        win_rate_pct=round(100 * wins / len(closed), 2) if closed else 0.0,
        trades=len(closed),
        exposure_pct=round(100 * float(in_market.mean()), 2) if len(in_market) else 0.0,
        fees=round(broker.fees_paid, 4),
        bars=len(timeline),
        decisions=n_decisions,
    )
