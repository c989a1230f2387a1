"""Running the cascade: ordered stages that score a bar and discard it early.

The same stage functions run in two shapes that give identical decisions:
``evaluate_batch`` over a whole history (backtests) and ``evaluate_last`` over a trailing
window (paper and live, with early exit and per-stage latency). The rules of the cascade
are documented in ``strategies/cascade.py``.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sorte.config import clamp_hold
from sorte.runtime.cascade.definition import CascadeDefinition
from sorte.runtime.cascade.llm_stages import LLMStage
from sorte.runtime.cascade.stages import Stage, StageOutput, StrategyStage
from sorte.runtime.cascade.stats import StageStats
from sorte.runtime.strategy import Strategy
from sorte.runtime.strategy_host import RemoteStrategy, StrategyHost
from sorte.runtime.values import Decision, Ohlcv, StageResult


@dataclass
class BatchSignals:
    """Cascade output over a whole history; ``act`` marks the bars that trade."""

    side: np.ndarray
    confidence: np.ndarray
    act: np.ndarray
    proposer: np.ndarray  # index of the stage that proposed the side, -1 if none
    outputs: list[StageOutput] = field(repr=False, default_factory=list)
    passed: list[np.ndarray] = field(repr=False, default_factory=list)
    hold: np.ndarray | None = None  # per bar, from the last stage that gave one (NaN: none)


@dataclass
class _Last:
    """Running state of ``evaluate_last`` over the stages."""

    proposed: int = 0
    proposer: int = -1
    weighted: float = 0.0
    hold: float | None = None
    results: list[StageResult] = field(default_factory=list)

    def previous(self) -> str:
        return "; ".join(f"{r.stage}: {r.reason} ({r.score:.2f})" for r in self.results if r.reason)


def _last(out: StageOutput) -> tuple:
    hold = None if out.hold is None else float(out.hold[-1])
    return float(out.score[-1]), int(out.side[-1]), str(out.reason[-1]), hold


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code, also when this thread already
    runs an event loop (then in a worker thread with a loop of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Cascade:
    def __init__(
        self,
        definition: CascadeDefinition,
        stages: list[Stage],
        host: StrategyHost | None = None,
        owns_host: bool = False,
    ) -> None:
        self.definition = definition
        self.stages = stages
        self.host = host  # the StrategyHost whose worker runs the strategy stages (None: in process)
        self.owns_host = owns_host  # close() stops the worker (else its owner does, e.g. a slot)
        self.min_confidence = definition.min_confidence
        self.total_weight = sum(s.weight for s in stages)
        self.window = max(s.lookback() for s in stages) + 2
        self.stats = {s.name: StageStats() for s in stages}

    @property
    def strategies(self) -> list[Strategy | RemoteStrategy]:
        return [s.strategy for s in self.stages if isinstance(s, StrategyStage)]

    def close(self) -> None:
        """Stop the strategy worker, if this cascade owns one."""
        if self.host is not None and self.owns_host:
            self.host.close()

    def prefetch(self, windows: list[Ohlcv]) -> list[float]:
        """Fetch the strategy stages' answers for a step's windows ahead of ``evaluate_last``, in at
        most two round trips to the worker: the first strategy stage for every window, then the
        later strategy stages for the windows the first one lets through (a bar it scores below
        its threshold is discarded there, so nothing after it is computed for that bar).

        Returns each window's share of the trips' wall time (a trip's time split evenly over
        the windows it served), which the runtime adds to each symbol's decision latency."""
        cost = [0.0] * len(windows)
        # (threshold, strategy) of the stages whose strategy runs in the worker
        remote = [
            (s.threshold, s.strategy)
            for s in self.stages
            if isinstance(s, StrategyStage) and isinstance(s.strategy, RemoteStrategy)
        ]
        if self.host is None or not remote or not windows:
            return cost
        (threshold, first), later = remote[0], [strategy for _, strategy in remote[1:]]
        self._fetch(self.host, [first], windows, list(range(len(windows))), cost)
        if later:
            through = [i for i, w in enumerate(windows) if first.ready[id(w)][1][0][-1] >= threshold]
            self._fetch(self.host, later, [windows[i] for i in through], through, cost)
        return cost

    @staticmethod
    def _fetch(
        host: StrategyHost, strategies: list[RemoteStrategy], windows: list[Ohlcv], which: list[int], cost: list[float]
    ) -> None:
        if not windows:
            return
        t0 = time.perf_counter()
        answers = host.signals(windows, [s.key for s in strategies])
        share = (time.perf_counter() - t0) / len(windows)
        for i in which:
            cost[i] += share
        for j, strategy in enumerate(strategies):
            strategy.ready = {id(w): (w, row[j]) for w, row in zip(windows, answers, strict=True)}

    def evaluate_batch(self, bars: Ohlcv, symbol: str = "") -> BatchSignals:
        n = len(bars)
        proposed = np.zeros(n, np.int8)
        proposer = np.full(n, -1, np.int16)
        alive = np.ones(n, bool)
        weighted = np.zeros(n)
        outputs: list[StageOutput] = []
        passed_masks: list[np.ndarray] = []
        for i, stage in enumerate(self.stages):
            t0 = time.perf_counter()
            out = stage.evaluate(bars, proposed)
            if isinstance(stage, LLMStage) and stage.judge is not None:
                self._judge_batch(stage, bars, symbol, out, proposed, alive, outputs)
            if i == 0:  # nothing proposed yet: no conflict, every side is new
                newly = out.side != 0
                with np.errstate(invalid="ignore"):
                    ok = out.score >= stage.threshold
            else:
                conflict = (out.side != 0) & (proposed != 0) & (out.side != proposed)
                newly = (proposed == 0) & (out.side != 0)
                with np.errstate(invalid="ignore"):
                    ok = (out.score >= stage.threshold) & ~conflict
            proposer = np.where(newly, i, proposer)
            proposed = np.where(newly, out.side, proposed).astype(np.int8)
            stats = self.stats[stage.name]
            stats.evaluated += int(alive.sum())
            alive = alive & ok
            stats.passed += int(alive.sum())
            stats.seconds += time.perf_counter() - t0
            score = out.score
            if not np.isfinite(score).all():  # nan_to_num copies even when there is nothing to replace
                score = np.nan_to_num(score)
            weighted += stage.weight * score
            outputs.append(out)
            passed_masks.append(alive.copy())
        confidence = weighted / self.total_weight
        act = alive & (proposed != 0) & (confidence >= self.min_confidence)
        hold = None
        for out in outputs:
            if out.hold is not None:
                hold = out.hold if hold is None else np.where(np.isfinite(out.hold), out.hold, hold)
        return BatchSignals(proposed, confidence, act, proposer, outputs, passed_masks, hold)

    def _judge_batch(
        self,
        stage: LLMStage,
        bars: Ohlcv,
        symbol: str,
        out: StageOutput,
        proposed: np.ndarray,
        alive: np.ndarray,
        earlier: list[StageOutput],
    ) -> None:
        """Ask the model about every bar still alive with a side, as the live runtime would
        bar by bar (same trailing window, same prompt, so the same cache entries)."""
        idx = np.flatnonzero(alive & (proposed != 0)).tolist()
        if not idx:
            return
        names = [st.name for st in self.stages[: len(earlier)]]

        def previous(i: int) -> str:
            return "; ".join(
                f"{n}: {o.reason[i]} ({o.score[i]:.2f})" for n, o in zip(names, earlier, strict=True) if o.reason[i]
            )

        async def ask_all() -> list[tuple]:
            calls = [stage.judge_last(bars.window(i, self.window), symbol, int(proposed[i]), previous(i)) for i in idx]
            return await asyncio.gather(*calls)

        answers = run_sync(ask_all())
        out.score, out.side, out.reason = out.score.copy(), out.side.copy(), out.reason.astype(object)
        out.hold = np.full(len(bars), np.nan)
        for i, (score, side, reason, hold) in zip(idx, answers, strict=True):
            out.score[i], out.side[i], out.reason[i] = score, side, reason
            if hold is not None:
                out.hold[i] = hold

    def evaluate_last(self, symbol: str, seq: int, bars: Ohlcv) -> Decision | None:
        """Decide on the last bar of a trailing window; None when the bar is discarded.
        LLM stages answer with their technical fallback here; ``aevaluate_last`` asks them."""
        state = _Last()
        for i, stage in enumerate(self.stages):
            t0 = time.perf_counter()
            answer = _last(stage.evaluate(bars, np.full(len(bars), state.proposed, np.int8)))
            if not self._record(i, stage, answer, t0, state):
                return None
        return self._conclude(symbol, seq, bars, state)

    async def aevaluate_last(self, symbol: str, seq: int, bars: Ohlcv) -> Decision | None:
        """``evaluate_last`` with the LLM stages' models asked (concurrently across symbols)."""
        state = _Last()
        for i, stage in enumerate(self.stages):
            t0 = time.perf_counter()
            if isinstance(stage, LLMStage) and stage.judge is not None:
                answer = await stage.judge_last(bars, symbol, state.proposed, state.previous())
            else:
                answer = _last(stage.evaluate(bars, np.full(len(bars), state.proposed, np.int8)))
            if not self._record(i, stage, answer, t0, state):
                return None
        return self._conclude(symbol, seq, bars, state)

    def _record(self, i: int, stage: Stage, answer: tuple, t0: float, state: _Last) -> bool:
        """Apply the cascade's rules to one stage's answer; False when it discards the bar."""
        score, side, reason, hold = answer
        conflict = side != 0 and state.proposed != 0 and side != state.proposed
        if state.proposed == 0 and side != 0:
            state.proposed, state.proposer = side, i
        ok = score >= stage.threshold and not conflict
        elapsed = time.perf_counter() - t0
        stats = self.stats[stage.name]
        stats.evaluated += 1
        stats.passed += int(ok)
        stats.seconds += elapsed
        state.results.append(StageResult(stage.name, score, side, reason, ok, elapsed))
        if hold is not None and np.isfinite(hold):
            state.hold = hold
        state.weighted += stage.weight * score
        return ok

    def _conclude(self, symbol: str, seq: int, bars: Ohlcv, state: _Last) -> Decision | None:
        confidence = state.weighted / self.total_weight
        if state.proposed == 0 or confidence < self.min_confidence:
            return None
        d = self.make_decision(
            symbol, seq, bars, len(bars) - 1, state.proposed, confidence, state.proposer, state.results
        )
        if state.hold is not None:
            d.hold_s = clamp_hold(state.hold)
        return d

    def make_decision(
        self,
        symbol: str,
        seq: int,
        bars: Ohlcv,
        idx: int,
        side: int,
        confidence: float,
        proposer: int,
        results: list[StageResult],
    ) -> Decision:
        return self._decision(
            symbol, seq, bars.ts.item(idx) + bars.interval_s, bars.close.item(idx), side, confidence, proposer, results
        )

    def _decision(
        self,
        symbol: str,
        seq: int,
        ts: float,
        price: float,
        side: int,
        confidence: float,
        proposer: int,
        results: list[StageResult],
        proposal: tuple[str, float, float, float] | None = None,
    ) -> Decision:
        strategy, stop_loss, take_profit, hold_s = proposal or self._proposal(proposer)
        reason = "; ".join([f"{r.stage}: {r.reason} ({r.score:.2f})" for r in results if r.reason])
        return Decision(
            symbol, seq, ts, side, float(confidence), strategy, reason, price, stop_loss, take_profit, hold_s, results
        )

    def _proposal(self, proposer: int) -> tuple[str, float, float, float]:
        """Strategy name, stop loss, take profit and clamped hold time of a decision whose
        side the stage ``proposer`` proposed."""
        stage = self.stages[proposer]
        if isinstance(stage, StrategyStage):
            strat = stage.strategy
            return (
                strat.name,
                strat.param("stop_loss", 0.0),
                strat.param("take_profit", 0.0),
                clamp_hold(strat.param("min_hold_s", 5.0)),
            )
        return stage.name, 0.0, 0.0, clamp_hold(5.0)

    def decision_at(self, signals: BatchSignals, symbol: str, seq: int, bars: Ohlcv, idx: int) -> Decision:
        """Build the Decision for an acting bar of a batch evaluation."""
        results = [
            StageResult(stage.name, out.score.item(idx), out.side.item(idx), out.reason.item(idx), mask.item(idx))
            for stage, out, mask in zip(self.stages, signals.outputs, signals.passed, strict=True)
        ]
        d = self.make_decision(
            symbol,
            seq,
            bars,
            idx,
            signals.side.item(idx),
            signals.confidence.item(idx),
            signals.proposer.item(idx),
            results,
        )
        return _with_llm_hold(d, signals.hold, idx)

    def decisions_at(self, signals: BatchSignals, symbol: str, bars: Ohlcv, idxs: np.ndarray) -> list[Decision]:
        """``decision_at`` for many bars at once (each bar's row is its sequence number);
        the same Decisions, with each column gathered once instead of once per bar."""
        idx = np.asarray(idxs, dtype=np.intp)
        if not len(idx):
            return []
        columns = [
            (stage.name, out.score[idx].tolist(), out.side[idx].tolist(), out.reason[idx].tolist(), mask[idx].tolist())
            for stage, out, mask in zip(self.stages, signals.outputs, signals.passed, strict=True)
        ]
        ts = bars.ts[idx].tolist()
        interval = bars.interval_s
        price = bars.close[idx].tolist()
        side = signals.side[idx].tolist()
        confidence = signals.confidence[idx].tolist()
        proposer = signals.proposer[idx].tolist()
        proposals = {p: self._proposal(p) for p in set(proposer)}
        single = len(columns) == 1
        first, scores, sides, reasons, passed = columns[0]
        out: list[Decision] = []
        for j, i in enumerate(idx.tolist()):  # as in _decision, inlined: this runs per acting bar
            if single:  # one stage: the same results and reason, without the loops
                results = [StageResult(first, scores[j], sides[j], reasons[j], passed[j])]
                reason = f"{first}: {reasons[j]} ({scores[j]:.2f})" if reasons[j] else ""
            else:
                results = [StageResult(name, sc[j], sd[j], rs[j], ok[j]) for name, sc, sd, rs, ok in columns]
                reason = "; ".join([f"{r.stage}: {r.reason} ({r.score:.2f})" for r in results if r.reason])
            strategy, stop_loss, take_profit, hold_s = proposals[proposer[j]]
            out.append(
                Decision(
                    symbol,
                    i,
                    ts[j] + interval,
                    side[j],
                    confidence[j],  # already a Python float
                    strategy,
                    reason,
                    price[j],
                    stop_loss,
                    take_profit,
                    hold_s,
                    results,
                )
            )
        if signals.hold is not None:
            for d, i in zip(out, idx.tolist(), strict=True):
                _with_llm_hold(d, signals.hold, i)
        return out


def _with_llm_hold(d: Decision, hold: np.ndarray | None, idx: int) -> Decision:
    """A final LLM stage's hold time, when it gave one, replaces the strategy's."""
    if hold is not None and np.isfinite(hold[idx]):
        d.hold_s = clamp_hold(float(hold[idx]))
    return d
