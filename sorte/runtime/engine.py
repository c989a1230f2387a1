"""The trading runtime: feed -> cascade (all symbols concurrently) -> executor -> broker.

One step handles the bars of one timestamp in two phases, exactly like the backtester:
first every bar goes to the broker (fills, protective exits) concurrently per symbol,
then the cascade analyses every symbol concurrently and the executor turns the decisions
into orders. The step is committed to the ledger atomically; only then is the next step
awaited (the batch interval, which can change while running). Nothing in the decision or
order path sleeps.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
import structlog
from pydantic import BaseModel

from sorte.runtime import risk as riskmath
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import Cascade, LLMStage
from sorte.runtime.clock import Clock, SimClock
from sorte.runtime.control import RuntimeControl
from sorte.runtime.executor import ExecutionReport, Executor
from sorte.runtime.feed import Feed
from sorte.runtime.ledger import Ledger
from sorte.runtime.metrics import LATENCY_BUCKETS, RuntimeMetrics
from sorte.runtime.values import Bar, Decision, Fill, Ohlcv, Order

log = structlog.get_logger("sorte.runtime")


class RunSummary(BaseModel):
    steps: int
    bars: int
    decisions: int
    orders: int
    fills: int
    start_equity: float
    final_equity: float
    return_pct: float
    realized_pnl: float
    max_drawdown_pct: float
    open_positions: int
    vetoes: dict[str, int]
    stage_pass_rates: dict[str, float]
    resumed_from_step: int | None = None


@dataclass
class _Buffer:
    """Trailing window of one symbol's bars, enough for the cascade."""

    size: int
    cols: list[list[float]] = field(default_factory=lambda: [[] for _ in range(6)])
    interval: float = 0.0

    def extend(self, w: Ohlcv) -> None:
        for col, arr in zip(self.cols, (w.ts, w.open, w.high, w.low, w.close, w.volume), strict=True):
            col.extend(arr.tolist())
        self.interval = w.interval_s or self.interval
        self._trim()

    def push(self, b: Bar) -> None:
        for col, v in zip(self.cols, (b.ts, b.open, b.high, b.low, b.close, b.volume), strict=True):
            col.append(v)
        self._trim()

    def _trim(self) -> None:
        if len(self.cols[0]) > self.size:
            for col in self.cols:
                del col[: len(col) - self.size]

    def ohlcv(self) -> Ohlcv:
        ts, open_, high, low, close, volume = (np.array(c, dtype=float) for c in self.cols)
        return Ohlcv(ts, open_, high, low, close, volume, interval_s=self.interval)


Listener = Callable[[str, object], None]


@dataclass(frozen=True)
class StageFigures:
    """A cascade stage's figures as the runtime gave them to its metrics, as data: passes,
    discards, and the histogram of its mean evaluation time per step."""

    stage: str
    passes: int
    discards: int
    latency_counts: tuple[int, ...]  # cumulative, one per LATENCY_BUCKETS bound then +Inf


class Runtime:
    def __init__(
        self,
        cascade: Cascade,
        feed: Feed,
        broker: PaperBroker,
        executor: Executor,
        clock: Clock,
        control: RuntimeControl,
        ledger: Ledger | None = None,
        metrics: RuntimeMetrics | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.cascade, self.feed, self.broker, self.executor = cascade, feed, broker, executor
        self.clock, self.control, self.ledger = clock, control, ledger
        self.metrics = metrics or RuntimeMetrics()
        self.listener = listener or (lambda kind, payload: None)
        self.buffers = {s: _Buffer(cascade.window, interval=feed.interval_s(s)) for s in feed.symbols}
        self._exported: dict[str, tuple[int, int, float]] = {}
        self._latency_counts: dict[str, list[int]] = {}  # per stage, per LATENCY_BUCKETS bound then +Inf
        self.cursor: dict[str, int] = {}
        self.step = 0
        self.start_equity = broker.equity()
        self.counts = {"bars": 0, "decisions": 0, "orders": 0, "fills": 0}
        self.resumed_from: int | None = None
        self._stop = asyncio.Event()
        self._resumed = False
        # Orders the ledger holds as "new": any final state the broker gives them later
        # (filled, expired, rejected) must reach the ledger, or a restart would resend them.
        self._inflight: dict[str, Order] = {}
        self._equity: list[float] = []
        self.last_decision_s = 0.0  # wall time of the last step's cascade, all symbols

    async def process(self, bars: list[Bar]) -> None:
        """Handle the bars of one step pushed by a driver (a commander slot) instead of
        pulled from the feed: the same two phases and the same atomic commit as ``run``."""
        await self._step(bars)
        self.control.refresh()

    def stop(self) -> None:
        """Finish the step in flight, commit it, and return from ``run``."""
        self._stop.set()

    async def resume(self) -> None:
        """Restore broker state and feed position from the ledger, if it has any (once)."""
        if self.ledger is None or self._resumed:
            return
        self._resumed = True
        cursor = self.ledger.cursor()
        if not cursor:
            return
        self.cursor = cursor
        account = self.ledger.account()
        self.broker.cash = account.get("cash", self.broker.cash)
        self.broker.realized_pnl = account.get("realized_pnl", 0.0)
        self.broker.fees_paid = account.get("fees", 0.0)
        self.broker.positions = self.ledger.positions()
        for order in self.ledger.open_orders():
            self.broker.restore(order)
            self._inflight[order.client_order_id] = order
        for sym, pos in self.broker.positions.items():
            self.broker.last_price[sym] = pos.entry_price
        curve = self.ledger.equity_curve()
        if curve:
            self.start_equity = float(curve[0][2])
            for _, _, eq in curve:
                self.executor.risk.observe_equity(eq)
            self._equity = [eq for _, _, eq in curve]
        self.step = self.ledger.last_step() + 1
        self.resumed_from = self.step
        self.feed.seek(cursor)
        for sym, seq in cursor.items():
            if sym in self.buffers:
                window = await self.feed.history(sym, seq + 1, self.cascade.window)
                self.buffers[sym].extend(window)
                if len(window):
                    self.broker.last_price[sym] = float(window.close[-1])
        log.info("runtime_resumed", step=self.step, cursor=cursor)
        self.listener("resumed", self.step)

    def adopt(self, orders: list[Order]) -> None:
        """Orders stored in the ledger outside a step (placed again when a slot took its role):
        their later states (filled, expired) reach the ledger like any other's."""
        for order in orders:
            self._inflight[order.client_order_id] = order

    def add_symbol(self, symbol: str, window: Ohlcv) -> None:
        """Trade ``symbol`` from the next step on, its indicators warm from ``window`` (the bars
        before its first one): a symbol that joins a live feed, or one with no cursor yet."""
        buffer = _Buffer(self.cascade.window, interval=window.interval_s or self.feed.interval_s(symbol))
        buffer.extend(window)
        self.buffers[symbol] = buffer
        if len(window):
            self.broker.last_price.setdefault(symbol, float(window.close[-1]))
        if symbol not in self.feed.symbols:
            self.feed.symbols.append(symbol)

    async def run(self, max_steps: int | None = None) -> RunSummary:
        await self.resume()
        done = 0
        while not self._stop.is_set() and (max_steps is None or done < max_steps):
            bars = await self.feed.next_batch()
            if bars is None:
                break
            if bars:
                await self._step(bars)
                done += 1
            self.control.refresh()
            self.metrics.batch_interval.set(self.control.batch_interval_s)
            if self.control.batch_interval_s and not self._stop.is_set():
                await self.clock.sleep(self.control.batch_interval_s)
        return self.summary()

    async def _step(self, bars: list[Bar]) -> None:
        if isinstance(self.clock, SimClock):
            self.clock.advance_to(bars[0].ts)
        fills: list[Fill] = []
        for got in await asyncio.gather(*(self._to_broker(b) for b in bars)):
            fills.extend(got)
        orders: list[Order] = self.broker.take_placed()  # exits resting at an exchange: in the ledger too
        self.executor.risk.observe_equity(self.broker.equity())
        t0 = time.perf_counter()
        windows = [self.buffers[b.symbol].ohlcv() for b in bars]
        shares = self.cascade.prefetch(windows)  # each symbol's share of the strategy worker's trips
        decisions = await asyncio.gather(
            *(self._analyze(b, w, c) for b, w, c in zip(bars, windows, shares, strict=True))
        )
        self.last_decision_s = time.perf_counter() - t0
        for decision in decisions:
            if decision is not None:
                orders.extend(self._execute(decision).orders)
        for b in bars:
            self.cursor[b.symbol] = b.seq
        self._commit(bars[0].ts, orders, fills)

    async def _to_broker(self, bar: Bar) -> list[Fill]:
        fills = self.broker.on_bar(bar)
        self.buffers[bar.symbol].push(bar)
        self.counts["bars"] += 1
        self.metrics.bars.labels(bar.symbol).inc()
        for f in fills:
            self.metrics.fills.labels(f.purpose).inc()
            log.debug(
                "fill",
                symbol=f.symbol,
                side=f.side,
                qty=f.qty,
                price=f.price,
                fee=f.fee,
                purpose=f.purpose,
                client_order_id=f.client_order_id,
                pnl=f.realized_pnl,
            )
            self.listener("fill", f)
        return fills

    async def _analyze(self, bar: Bar, window: Ohlcv, prefetch_s: float = 0.0) -> Decision | None:
        t0 = time.perf_counter()
        decision = await self.cascade.aevaluate_last(bar.symbol, bar.seq, window)
        self.metrics.decision_latency.observe(time.perf_counter() - t0 + prefetch_s)
        return decision

    def _execute(self, d: Decision) -> ExecutionReport:
        self.counts["decisions"] += 1
        self.metrics.decisions.labels(d.symbol, "BUY" if d.side > 0 else "SELL").inc()
        if self.control.paused and d.symbol not in self.broker.positions:
            report = ExecutionReport(skipped="paused: no new entries")
        else:
            closes = {
                s: np.asarray(b.cols[4][-self.executor.limits.correlation_window :]) for s, b in self.buffers.items()
            }
            report = self.executor.on_decision(d, closes)
        for order in report.orders:
            self.metrics.orders.labels(order.purpose).inc()
        if report.skipped.startswith("risk veto"):
            self.metrics.vetoes.labels(report.skipped.split()[2].rstrip(":")).inc()
        self.counts["orders"] += len(report.orders)
        log.debug(
            "decision",
            symbol=d.symbol,
            seq=d.seq,
            side=d.side,
            confidence=round(d.confidence, 4),
            strategy=d.strategy,
            orders=[o.client_order_id for o in report.orders],
            skipped=report.skipped or None,
        )
        self.listener("decision", (d, report))
        return report

    def _commit(self, ts: float, orders: list[Order], fills: list[Fill]) -> None:
        equity = self.broker.equity()
        self._equity.append(equity)
        self.counts["fills"] += len(fills)
        self.metrics.equity.set(equity)
        self.metrics.realized_pnl.set(self.broker.realized_pnl)
        self.metrics.open_positions.set(len(self.broker.positions))
        self.metrics.exposure.set(self.broker.gross_exposure() / equity if equity > 0 else 0.0)
        self._export_stage_stats()
        if self.ledger is not None:
            account = {
                "cash": self.broker.cash,
                "realized_pnl": self.broker.realized_pnl,
                "fees": self.broker.fees_paid,
            }
            self.ledger.commit_step(
                self.step,
                ts,
                orders,
                fills,
                self.broker.positions,
                account,
                equity,
                dict(self.cursor),
                self._settle_inflight(orders),
            )
        self.step += 1

    def _settle_inflight(self, new_orders: list[Order]) -> list[Order]:
        """Orders from earlier steps, for the ledger to record their state (final, or the
        remaining lifetime of a resting limit order); final ones are then forgotten."""
        known = list(self._inflight.values())
        for o in known:
            if o.status != "new":
                del self._inflight[o.client_order_id]
        for o in new_orders:
            if o.status == "new":
                self._inflight[o.client_order_id] = o
        return known

    def _export_stage_stats(self) -> None:
        for stage in self.cascade.stages:
            if isinstance(stage, LLMStage) and stage.judge is not None:
                self.metrics.llm_stage_fallbacks.labels(stage.name).set(stage.fallbacks)
        for name, st in self.cascade.stats.items():
            passed, discarded = st.passed, st.evaluated - st.passed
            prev_passed, prev_discarded, prev_seconds = self._exported.get(name, (0, 0, 0.0))
            self.metrics.stage_passes.labels(name).inc(passed - prev_passed)
            self.metrics.discards.labels(name).inc(discarded - prev_discarded)
            evaluated = passed + discarded - prev_passed - prev_discarded
            if evaluated > 0:  # one observation per step: the stage's mean time per evaluation in it
                mean_s = (st.seconds - prev_seconds) / evaluated
                self.metrics.stage_latency.labels(name).observe(mean_s)
                counts = self._latency_counts.setdefault(name, [0] * (len(LATENCY_BUCKETS) + 1))
                counts[bisect_left(LATENCY_BUCKETS, mean_s)] += 1  # a bound holds what is <= it, as Prometheus'
            self._exported[name] = (passed, discarded, st.seconds)

    def stage_figures(self) -> list[StageFigures]:
        """What ``_export_stage_stats`` gave the metrics so far, in the cascade's order."""
        empty = [0] * (len(LATENCY_BUCKETS) + 1)
        return [
            StageFigures(name, passed, discarded, tuple(accumulate(self._latency_counts.get(name, empty))))
            for name, (passed, discarded, _) in self._exported.items()
        ]

    def llm_cache_hit_rate(self) -> float | None:
        """The LLM answer cache's hit rate; None when no stage asks a model."""
        for stage in self.cascade.stages:
            llm = getattr(stage.judge, "llm", None) if isinstance(stage, LLMStage) else None
            if llm is not None:
                return float(llm.cache.stats().hit_rate)
        return None

    def summary(self) -> RunSummary:
        final = self.broker.equity()
        return RunSummary(
            steps=self.step,
            bars=self.counts["bars"],
            decisions=self.counts["decisions"],
            orders=self.counts["orders"],
            fills=self.counts["fills"],
            start_equity=round(self.start_equity, 2),
            final_equity=round(final, 2),
            return_pct=round(100 * (final / self.start_equity - 1), 4) if self.start_equity else 0.0,
            realized_pnl=round(self.broker.realized_pnl, 2),
            max_drawdown_pct=round(100 * riskmath.max_drawdown(np.array(self._equity or [final])), 4),
            open_positions=len(self.broker.positions),
            vetoes=dict(self.executor.risk.vetoes),
            stage_pass_rates={n: round(s.pass_rate, 4) for n, s in self.cascade.stats.items()},
            resumed_from_step=self.resumed_from,
        )
