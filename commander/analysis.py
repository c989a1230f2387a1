"""Judging a candidate deployment against the active one (blue/green, Kayenta-style).

While the candidate runs in shadow, both slots process the same bars; for every bar step each
slot reports a ``StepSample`` (latency of its decision cascade, errors absorbed, equity of its
book). ``judge`` compares the two series step by step and gives an ``AnalysisResult``:

- critical checks come from the caller (crash, exception, missed heartbeats, gap, stale epoch,
  ledger mismatch); any critical fail is a fail, whatever the data says.
- performance checks compare the paired steps: latency p50 and p99, error rate, per-bar return
  and max drawdown. A check fails only when the candidate is worse beyond a tolerance and,
  where noise could explain it, a one-sided paired test says so at ``alpha``: a healthy
  candidate must not be rejected for timer jitter.
- too few paired steps make every performance check inconclusive: a short shadow run never
  passes.

Everything here is pure (no I/O); the only clock read is a missing ``finished_at``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from commander.deployment import AnalysisResult, CheckResult
from sorte.config import AnalysisSettings
from sorte.errors import SorteError

# Per-bar return differences this small are float rounding, not a strategy difference.
_NO_VARIANCE = 1e-12

PERFORMANCE_CHECKS: tuple[str, ...] = ("latency_p50", "latency_p99", "error_rate", "pnl_per_bar", "drawdown")


class AnalysisError(SorteError):
    """The samples cannot be analysed (NaN, negative latency, duplicate ticks...)."""


class StepSample(BaseModel):
    """One slot's result for one bar step (tick)."""

    tick: int
    latency_ms: float  # wall time of the decision cascade for the step
    errors: int = Field(0, ge=0)  # decision-path errors absorbed in the step (LLM fallbacks etc.)
    equity: float  # equity of the slot's book after the step
    pnl: float  # equity change over the step (equity - previous equity)


def _validate(samples: list[StepSample], who: str) -> None:
    # NaN compares false with everything: let through, it would quietly pass every check.
    seen: set[int] = set()
    for s in samples:
        if not (math.isfinite(s.latency_ms) and math.isfinite(s.equity) and math.isfinite(s.pnl)):
            raise AnalysisError(
                f"{who} sample at tick {s.tick} is not finite: latency_ms={s.latency_ms}, "
                f"equity={s.equity}, pnl={s.pnl}"
            )
        if s.latency_ms < 0:
            raise AnalysisError(f"{who} sample at tick {s.tick} has a negative latency: {s.latency_ms} ms")
        if s.tick in seen:
            raise AnalysisError(f"{who} has two samples for tick {s.tick}")
        seen.add(s.tick)


def pair(baseline: list[StepSample], candidate: list[StepSample]) -> tuple[list[StepSample], list[StepSample]]:
    """The samples of the ticks both slots have, in tick order (a slot that started late or
    skipped a bar must not shift the comparison by one step)."""
    _validate(baseline, "baseline")
    _validate(candidate, "candidate")
    by_tick = {s.tick: s for s in candidate}
    ticks = sorted(s.tick for s in baseline if s.tick in by_tick)
    base_by_tick = {s.tick: s for s in baseline}
    return [base_by_tick[t] for t in ticks], [by_tick[t] for t in ticks]


def _check(name: str, failed: bool, detail: str) -> CheckResult:
    return CheckResult(name=name, kind="performance", outcome="fail" if failed else "pass", detail=detail)


def _slower_p_value(base_ms: np.ndarray, cand_ms: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p-value for "the candidate is slower"."""
    diff = cand_ms - base_ms
    if not np.any(diff):
        return 1.0  # identical latencies: no evidence at all (scipy refuses all-zero input)
    return float(stats.wilcoxon(diff, alternative="greater").pvalue)


def _tail_p_value(base_ms: np.ndarray, cand_ms: np.ndarray) -> float:
    """One-sided Fisher exact p-value for "the candidate reaches the slow tail more often":
    steps above the pooled p90, candidate against baseline.

    The tail is judged by how often it is reached, not by its most extreme sample: over a few
    dozen steps p99 is nearly the maximum, and one descheduled step would decide it."""
    cut = np.quantile(np.concatenate([base_ms, cand_ms]), 0.9)
    c, b = int(np.sum(cand_ms > cut)), int(np.sum(base_ms > cut))
    table = [[c, len(cand_ms) - c], [b, len(base_ms) - b]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def _latency_check(
    name: str, q: float, ratio: float, base_ms: np.ndarray, cand_ms: np.ndarray, p: float, s: AnalysisSettings
) -> CheckResult:
    bq, cq = float(np.quantile(base_ms, q)), float(np.quantile(cand_ms, q))
    # All three must agree: a ratio alone trips on sub-ms baselines, a test alone on tiny shifts.
    failed = cq > ratio * bq and cq - bq > s.latency_floor_ms and p < s.alpha
    shown = f"{cq / bq:.2f}x" if bq > 0 else "n/a"
    detail = f"baseline {bq:.2f} ms, candidate {cq:.2f} ms, ratio {shown} (max {ratio}x), p={p:.3g}"
    return _check(name, failed, detail)


def _error_rate_check(base: list[StepSample], cand: list[StepSample], s: AnalysisSettings) -> CheckResult:
    steps = len(base)
    br, cr = sum(x.errors for x in base) / steps, sum(x.errors for x in cand) / steps
    detail = f"baseline {br:.3f}, candidate {cr:.3f} errors/step (max +{s.error_rate_delta})"
    return _check("error_rate", cr - br > s.error_rate_delta, detail)


def _returns(samples: list[StepSample]) -> np.ndarray:
    # Returns, not PnL: the two books may hold different equity, a dollar is not a dollar.
    before = [x.equity - x.pnl for x in samples]
    return np.array([x.pnl / b if b != 0 else 0.0 for x, b in zip(samples, before, strict=True)])


def _total_return(samples: list[StepSample]) -> float:
    start = samples[0].equity - samples[0].pnl
    return samples[-1].equity / start - 1.0 if start != 0 else 0.0


def _pnl_check(base: list[StepSample], cand: list[StepSample], s: AnalysisSettings) -> CheckResult:
    d = _returns(cand) - _returns(base)
    mean = float(d.mean())
    if float(d.std()) <= _NO_VARIANCE:
        # No variance (beyond float rounding), no test: the shortfall is exact, and scipy would
        # give NaN or a meaningless p-value with a precision warning.
        p, failed = (0.0 if mean < -s.pnl_margin else 1.0), mean < -s.pnl_margin
    else:
        p = float(stats.ttest_1samp(d + s.pnl_margin, 0.0, alternative="less").pvalue)
        failed = p < s.alpha
    detail = (
        f"mean difference {mean * 1e4:+.2f} bp/bar, total return baseline {_total_return(base):+.2%}, "
        f"candidate {_total_return(cand):+.2%}, p={p:.3g}"
    )
    return _check("pnl_per_bar", failed, detail)


def max_drawdown(samples: list[StepSample]) -> float:
    """Largest peak-to-trough fall of the equity, as a fraction of the peak; the equity before
    the first step counts as the first point, so a loss on step one is a drawdown too."""
    equity = np.array([samples[0].equity - samples[0].pnl] + [x.equity for x in samples])
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - equity) / peaks, 0.0)
    return float(falls.max())


def _drawdown_check(base: list[StepSample], cand: list[StepSample], s: AnalysisSettings) -> CheckResult:
    bd, cd = max_drawdown(base), max_drawdown(cand)
    detail = f"max drawdown baseline {bd:.2%}, candidate {cd:.2%} (max +{s.drawdown_delta:.2%})"
    return _check("drawdown", cd > bd + s.drawdown_delta, detail)


def performance_checks(
    baseline: list[StepSample], candidate: list[StepSample], settings: AnalysisSettings | None = None
) -> list[CheckResult]:
    """The five performance checks on the paired steps; all inconclusive below ``min_bars``."""
    s = settings or AnalysisSettings()
    base, cand = pair(baseline, candidate)
    if len(base) < s.min_bars:
        detail = f"only {len(base)} paired bars, {s.min_bars} needed"
        return [
            CheckResult(name=n, kind="performance", outcome="inconclusive", detail=detail) for n in PERFORMANCE_CHECKS
        ]
    warm = min(s.latency_warmup_bars, len(base) - 2)
    base_ms = np.array([x.latency_ms for x in base[warm:]])
    cand_ms = np.array([x.latency_ms for x in cand[warm:]])
    return [
        _latency_check(
            "latency_p50", 0.50, s.latency_p50_ratio, base_ms, cand_ms, _slower_p_value(base_ms, cand_ms), s
        ),
        _latency_check("latency_p99", 0.99, s.latency_p99_ratio, base_ms, cand_ms, _tail_p_value(base_ms, cand_ms), s),
        _error_rate_check(base, cand, s),
        _pnl_check(base, cand, s),
        _drawdown_check(base, cand, s),
    ]


def verdict(checks: list[CheckResult]) -> Literal["pass", "fail", "inconclusive"]:
    """Any fail fails; else any inconclusive is inconclusive; else pass."""
    outcomes = {c.outcome for c in checks}
    if "fail" in outcomes:
        return "fail"
    return "inconclusive" if "inconclusive" in outcomes else "pass"


def judge(
    critical: list[CheckResult],
    baseline: list[StepSample],
    candidate: list[StepSample],
    settings: AnalysisSettings,
    started_at: datetime,
    finished_at: datetime | None = None,
) -> AnalysisResult:
    """The analysis result: the caller's critical checks, then the performance checks.

    A critical fail decides the verdict; the performance checks are still listed (when any
    step was paired) so that the report shows what the candidate did before it failed.
    ``finished_at`` defaults to now (UTC).
    """
    for c in critical:
        if c.kind != "critical":
            raise AnalysisError(f"check {c.name!r} passed as critical has kind {c.kind!r}")
    critical_fail = any(c.outcome == "fail" for c in critical)
    perf = performance_checks(baseline, candidate, settings)
    if critical_fail and not pair(baseline, candidate)[0]:
        perf = []  # nothing ran side by side: "0 bars" lines would only add noise to the report
    checks = [*critical, *perf]
    return AnalysisResult(
        verdict=verdict(checks), checks=checks, started_at=started_at, finished_at=finished_at or datetime.now(UTC)
    )
