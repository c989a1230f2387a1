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
from operator import attrgetter

import numpy as np
import pandas as pd
from pydantic import BaseModel

from sorte.config import BrokerSettings, RiskSettings
from sorte.runtime import risk as riskmath
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import Cascade
from sorte.runtime.data import to_ohlcv
from sorte.runtime.executor import Executor
from sorte.runtime.timeline import BarColumns, datetime_index, merge_timestamps
from sorte.runtime.values import BUY, SELL, Decision, Fill

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
    def __init__(
        self,
        cascade: Cascade,
        data: dict[str, pd.DataFrame],
        broker_settings: BrokerSettings,
        risk_settings: RiskSettings,
        scan_all: bool,
    ) -> None:
        self.cascade, self.scan_all = cascade, scan_all
        self.symbols = sorted(data)
        self.series = {s: to_ohlcv(data[s]) for s in self.symbols}
        self.signals = {s: cascade.evaluate_batch(self.series[s], s) for s in self.symbols}
        self.broker = PaperBroker(broker_settings)
        self.executor = Executor(self.broker, risk_settings, broker_settings)
        self.start_cash = broker_settings.initial_cash
        self.corr_window = risk_settings.correlation_window
        ts_all = [self.series[s].ts for s in self.symbols]
        self.timeline, aligned = merge_timestamps(ts_all)
        self.aligned = aligned  # a single symbol whose rows are the timeline steps
        # its frame's index is then the equity curve's: no second index to build
        self.frame_index = data[self.symbols[0]].index if aligned else None
        n, m = len(self.timeline), len(self.symbols)
        if aligned:  # the one symbol's row at each step is the step itself
            self.rows = self.last_rows = np.arange(n).reshape(1, n)
            self.tpos = [self.rows[0]]
            self.closes = self.series[self.symbols[0]].close.reshape(1, n)
        else:
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
        # The decisions of the acting bars, built in one pass per symbol: row -> Decision.
        self.pending_decisions: list[dict[int, Decision]] = []
        for k, s in enumerate(self.symbols):
            acting = np.flatnonzero(self.signals[s].act)
            self.interesting[self.tpos[k][acting]] = True
            built = cascade.decisions_at(self.signals[s], s, self.series[s], acting)
            self.pending_decisions.append(dict(zip(acting.tolist(), built, strict=True)))
        self.fills: list[Fill] = []
        self.decisions: list[Decision] = []
        # Account state after each step that changed it (only fills change cash and
        # positions); steps in between carry the previous state.
        self.snap_t: list[int] = []
        self.snap_cash: list[float] = []
        self.snap_qty: list = []  # a list of qty per symbol, or a float when there is one symbol

    def run(self, progress: Progress | None) -> None:
        n = len(self.timeline)
        # Steps to visit: bars with a decision, plus those pushed on the way (the next bar
        # after an order, the bar where a resting stop triggers).
        wake = list(range(n)) if self.scan_all else np.flatnonzero(self.interesting).tolist()
        heapq.heapify(wake)
        if self.aligned:
            self._run_one(wake, progress)
        else:
            self._run_many(wake, progress)
        if progress is not None:
            progress(n, n)

    def _run_many(self, wake: list[int], progress: Progress | None) -> None:
        n, scan_all = len(self.timeline), self.scan_all
        heappop, heappush = heapq.heappop, heapq.heappush
        rows = self.rows.tolist()
        ks = list(enumerate(self.symbols))
        m = len(ks)
        series = [self.series[s] for s in self.symbols]
        lengths = [len(o) for o in series]
        tpos = self.tpos
        bar_cols = [BarColumns(o, scan_all) for o in series]
        decisions_of = self.pending_decisions
        started, close_lists = self.started, self.close_lists
        broker, executor = self.broker, self.executor
        positions, last_price = broker.positions, broker.last_price
        needs_bar, on_bar, has_pending = broker.needs_bar, broker.on_bar, broker.has_pending
        protective_trigger, equity = broker.protective_trigger, broker.equity
        observe = executor.risk.observe_equity
        fills, decisions = self.fills, self.decisions
        step = max(1, n // 100)
        next_report = 0
        prev_t = -1
        while wake:
            t = heappop(wake)
            if t <= prev_t:
                continue
            if progress is not None and t >= next_report:
                progress(t + 1, n)
                next_report = t + step
            if prev_t >= 0 and t - prev_t >= 2 and positions:
                self._observe_peak(prev_t, t)
            changed = False
            for k, sym in ks:  # phase 1: bars to the broker
                r = rows[k][t]
                if r < 0:
                    continue
                if scan_all or needs_bar(sym):
                    got = on_bar(bar_cols[k].bar(sym, r))
                    if got:
                        fills.extend(got)
                        changed = True
                    if has_pending(sym) and r + 1 < lengths[k]:
                        heappush(wake, tpos[k].item(r + 1))
                    o = series[k]
                    trigger = protective_trigger(sym, o.low, o.high, r + 1)
                    if trigger is not None:
                        heappush(wake, tpos[k].item(trigger))
            for k, sym in ks:  # mark to market
                if started[k] <= t:
                    last_price[sym] = close_lists[k][t]
            observe(equity())
            for k in range(m):  # phase 2: decisions to the executor
                r = rows[k][t]
                if r >= 0:
                    decision = decisions_of[k].get(r)
                    if decision is not None:
                        decisions.append(decision)
                        report = executor.on_decision(decision, self._recent_closes(k, r))
                        if report.orders and r + 1 < lengths[k]:
                            heappush(wake, tpos[k].item(r + 1))
            if changed:
                self._snapshot(t)
            prev_t = t

    def _run_one(self, wake: list[int], progress: Progress | None) -> None:
        """``_run_many`` for a single symbol, whose rows are the timeline steps themselves.
        The broker's state is read directly (it is the PaperBroker built above) to decide
        whether a bar needs it; what happens there is still the broker's own code."""
        n, scan_all = len(self.timeline), self.scan_all
        heappop, heappush = heapq.heappop, heapq.heappush
        sym = self.symbols[0]
        o = self.series[sym]
        low, high = o.low, o.high
        make_bar = BarColumns(o, scan_all).bar
        decisions_of = self.pending_decisions[0]
        closes = self.close_lists[0]
        broker, executor = self.broker, self.executor
        positions, pending, last_price = broker.positions, broker.pending, broker.last_price
        on_bar, protective_trigger, equity = broker.on_bar, broker.protective_trigger, broker.equity
        observe = executor.risk.observe_equity
        on_decision = executor.on_decision
        fills, decisions = self.fills, self.decisions
        snap_t, snap_cash, snap_qty = self.snap_t, self.snap_cash, self.snap_qty
        step = max(1, n // 100)
        next_report = 0
        prev_t = -1
        follow = False  # the next step is t + 1 (an order waits for it): no need to queue it
        while follow or wake:
            if follow:
                t, follow = prev_t + 1, False
            else:
                t = heappop(wake)
                if t <= prev_t:
                    continue
            if progress is not None and t >= next_report:
                progress(t + 1, n)
                next_report = t + step
            pos = positions.get(sym)
            if pos is not None and t - prev_t >= 2 and prev_t >= 0:
                # The equity peak over the skipped bars, where nothing filled: it lies at
                # the segment's max (long) or min (short) close.
                q = pos.qty
                seg = closes[prev_t + 1 : t]
                observe(broker.cash + q * (max(seg) if q > 0 else min(seg)))
            # phase 1: the bar to the broker, when it holds an order or a resting exit
            if scan_all or pending.get(sym) or (pos is not None and (pos.stop_price or pos.take_price)):
                got = on_bar(make_bar(sym, t))
                if got:
                    fills.extend(got)
                if pending.get(sym) and t + 1 < n:
                    follow = True
                pos = positions.get(sym)
                if pos is not None and (pos.stop_price or pos.take_price):
                    trigger = protective_trigger(sym, low, high, t + 1)
                    if trigger is not None:
                        heappush(wake, trigger)
            else:
                got = None
            last_price[sym] = closes[t]  # mark to market
            observe(equity())
            decision = decisions_of.get(t)
            if decision is not None:  # phase 2: the decision to the executor
                decisions.append(decision)
                if on_decision(decision, None).orders and t + 1 < n:
                    follow = True
            if got:
                snap_t.append(t)
                snap_cash.append(broker.cash)
                pos = positions.get(sym)
                snap_qty.append(pos.qty if pos is not None else 0.0)  # one symbol: a float per snapshot
            prev_t = t

    def _observe_peak(self, prev_t: int, t: int) -> None:
        """Feed the risk manager the equity peak of the bars skipped since the last step
        (nothing fills on them: the account is the one the last step left)."""
        pos = self.broker.positions
        qty = [pos[s].qty if s in pos else 0.0 for s in self.symbols]
        peak = float((self.broker.cash + np.asarray(qty) @ self.closes[:, prev_t + 1 : t]).max())
        self.executor.risk.observe_equity(peak)

    def _recent_closes(self, k: int, r: int) -> dict[str, np.ndarray]:
        w = self.corr_window
        return {
            s: self.series[s].close[max(0, lr - w + 1) : lr + 1]
            for s, lr in zip(self.symbols, self.last_rows[:, self.tpos[k][r]], strict=True)
            if lr >= 0
        }

    def _snapshot(self, t: int) -> None:
        self.snap_t.append(t)
        self.snap_cash.append(self.broker.cash)
        pos = self.broker.positions
        self.snap_qty.append([pos[s].qty if s in pos else 0.0 for s in self.symbols])

    def result(self) -> BacktestResult:
        n, m = len(self.timeline), len(self.symbols)
        cash = np.full(n, self.start_cash)
        qty = np.zeros((m, n))
        if self.snap_t:  # each snapshot holds from its step up to the next one
            first = self.snap_t[0]
            span = np.diff(np.append(self.snap_t, n))
            cash[first:] = np.repeat(self.snap_cash, span)
            held = np.asarray(self.snap_qty, dtype=float)  # per snapshot: a qty per symbol, or one float
            qty[:, first:] = np.repeat(held.reshape(1, -1) if held.ndim == 1 else held.T, span, axis=1)
        equity = cash + (qty * self.closes).sum(axis=0)
        in_market = (qty != 0).any(axis=0)
        index = self.frame_index if self.frame_index is not None else datetime_index(self.timeline)
        trades = trades_from_fills(self.fills)
        metrics = _metrics(equity, in_market, trades, self.broker, self.start_cash, self.timeline, len(self.decisions))
        rates = {name: st.pass_rate for name, st in self.cascade.stats.items()}
        curve = pd.Series(equity, index=index, copy=False)
        return BacktestResult(metrics, trades, self.fills, self.decisions, curve, rates)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def trades_from_fills(fills: list[Fill]) -> list[Trade]:
    """Pair entry and exit fills per symbol into round-trip trades (open ones last)."""
    open_trades: dict[str, Trade] = {}
    done: list[Trade] = []
    names = {BUY: "BUY", SELL: "SELL"}
    for f in fills:
        sym = f.symbol
        current = open_trades.get(sym)
        if current is not None and (f.side > 0) != (current.side == "BUY"):
            price = f.price
            current.exit_seq, current.exit_ts = f.seq, f.ts
            current.exit_price, current.exit_reason = price, f.purpose
            direction = 1 if current.side == "BUY" else -1
            current.pnl += direction * (price - current.entry_price) * current.qty - f.fee  # pnl held -entry fee
            current.return_pct = 100 * direction * (price / current.entry_price - 1)
            done.append(current)
            del open_trades[sym]
        elif f.purpose == "open":
            open_trades[sym] = Trade(
                sym, names.get(f.side, "FLAT"), f.qty, f.seq, f.ts, f.price, None, None, None, None, -f.fee
            )
    key = attrgetter("entry_seq", "symbol")
    done.sort(key=key)
    return done + sorted(open_trades.values(), key=key)


def _metrics(
    equity: np.ndarray,
    in_market: np.ndarray,
    trades: list[Trade],
    broker: PaperBroker,
    start: float,
    timeline: np.ndarray,
    n_decisions: int,
) -> BacktestMetrics:
    rets = riskmath.returns_from_equity(equity)
    spacing = _median(np.diff(timeline)) if len(timeline) > 1 else 86_400.0
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


def _median(x: np.ndarray) -> float:
    """``float(np.median(x))`` of a 1-D float array, with one partition and none of the
    generic machinery: the middle value, or the mean of the two middle values."""
    n = len(x)
    if n == 0 or np.isnan(x).any():
        return float(np.median(x))
    h = n // 2
    middle = slice(h, h + 1) if n % 2 else slice(h - 1, h + 1)
    return float(np.partition(x, (middle.start, h))[middle].mean())
