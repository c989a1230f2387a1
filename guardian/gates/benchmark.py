"""Benchmark gate: backtest candidate and baseline on the same fixed data, compare with a paired test.

Each side is a directory with its own ``strategies/`` (cascade definition + modules).
Both run on the same data sets (the seeded demo market by default); per-bar portfolio
returns are paired and compared with a seeded bootstrap CI of the mean difference.
Metrics: return, Sharpe, max drawdown, number of trades and decision latency, each
better / same / worse / inconclusive under :class:`Tolerances`. A candidate drawdown
above ``drawdown_floor_pct`` fails whatever else. Identical code comes out "same".

Loading strategy modules executes candidate code: in production run this module inside
the sandbox (``run_benchmark_gate_in(runner, ...)`` runs ``python -m guardian.gates.benchmark``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from guardian.gates import OUT, Runner, read_output
from guardian.stats import Outcome, PairedTest, paired_bootstrap
from guardian.verdict import GateResult, GateStatus, MetricRow
from sorte.config import BrokerSettings, RiskSettings
from sorte.runtime.backtest import BacktestResult, run_backtest
from sorte.runtime.cascade import build_cascade, read_cascade

GATE = "benchmark"
DEMO_SEEDS = (11, 23, 37)

Dataset = dict[str, pd.DataFrame]


class Tolerances(BaseModel):
    """Differences within these bounds count as "same"."""

    return_pct: float = 0.5  # total return, percentage points
    sharpe: float = 0.1
    drawdown_pct: float = 1.0  # max drawdown, percentage points
    trades_rel: float = 0.2  # number of trades, relative
    latency_rel: float = 1.0  # decision latency, relative (timing is noisy)
    latency_abs_s: float = 0.0005  # plus this absolute slack per decision
    bar_return: float = 1e-5  # equivalence margin of the mean per-bar return difference
    drawdown_floor_pct: float = 25.0  # hard floor: candidate drawdown above it fails
    min_bars: int = 100  # fewer paired bars -> inconclusive
    confidence: float = 0.95
    n_boot: int = 2000
    block: int = 5
    seed: int = 0


def demo_datasets(seeds: tuple[int, ...] = DEMO_SEEDS, n_symbols: int = 3, n_bars: int = 600) -> dict[str, Dataset]:
    from sorte.runtime.demo import generate

    return {f"demo-{s}": generate(n_symbols=n_symbols, n_bars=n_bars, seed=s) for s in seeds}


class _Side:
    def __init__(self, root: Path, datasets: Mapping[str, Dataset], broker: BrokerSettings, risk: RiskSettings):
        strategies = Path(root) / "strategies"
        definition = read_cascade(strategies / "cascade.py")
        self.results: dict[str, BacktestResult] = {}
        self.latency: dict[str, float] = {}
        for name, data in datasets.items():
            cascade = build_cascade(definition, strategies)
            t0 = time.perf_counter()
            res = run_backtest(cascade, data, broker, risk)
            elapsed = time.perf_counter() - t0
            self.results[name] = res
            self.latency[name] = elapsed / max(1, sum(len(f) for f in data.values()))

    def bar_returns(self, name: str) -> pd.Series:
        eq = self.results[name].equity
        return eq.pct_change().fillna(0.0)

    def metric(self, attr: str) -> float:
        return float(np.mean([getattr(r.metrics, attr) for r in self.results.values()]))

    def worst_drawdown(self) -> float:
        return float(max(abs(r.metrics.max_drawdown_pct) for r in self.results.values()))

    def trades(self) -> int:
        return int(sum(r.metrics.trades for r in self.results.values()))

    def mean_latency(self) -> float:
        return float(np.mean(list(self.latency.values())))


def _by_test(delta: float, tol: float, test: Outcome) -> Outcome:
    """Scalar metric (higher is better) judged together with the paired test."""
    if test == "same" or abs(delta) <= tol:
        return "same"
    if delta > 0:
        return "better" if test == "better" else "inconclusive"
    return "worse" if test == "worse" else "inconclusive"


def compare(
    candidate: Path,
    baseline: Path,
    datasets: Mapping[str, Dataset] | None = None,
    tolerances: Tolerances | None = None,
    broker: BrokerSettings | None = None,
    risk: RiskSettings | None = None,
) -> GateResult:
    t0 = time.perf_counter()
    tol = tolerances or Tolerances()
    datasets = datasets if datasets is not None else demo_datasets()
    broker = broker or BrokerSettings()
    risk = risk or RiskSettings()
    base = _Side(baseline, datasets, broker, risk)
    cand = _Side(candidate, datasets, broker, risk)

    pairs_c, pairs_b = [], []
    for name in datasets:
        rc, rb = cand.bar_returns(name), base.bar_returns(name)
        joined = pd.concat([rc.rename("c"), rb.rename("b")], axis=1, join="inner")
        pairs_c.append(joined["c"].to_numpy())
        pairs_b.append(joined["b"].to_numpy())
    c_ret, b_ret = np.concatenate(pairs_c), np.concatenate(pairs_b)
    test: PairedTest = paired_bootstrap(
        c_ret, b_ret, n_boot=tol.n_boot, confidence=tol.confidence, seed=tol.seed, block=tol.block
    )
    test_outcome = test.outcome(tol.bar_return, tol.min_bars)
    note = f"{test.method} {tol.confidence:.0%} CI [{test.low:.3g}, {test.high:.3g}], n={test.n}"
    rows: list[MetricRow] = [
        MetricRow(
            metric="mean bar return",
            baseline=float(np.mean(b_ret)) if b_ret.size else None,
            candidate=float(np.mean(c_ret)) if c_ret.size else None,
            delta=test.mean_diff,
            outcome=test_outcome,
            note=note,
        )
    ]

    def scalar(metric: str, b: float, c: float, outcome: Outcome, note: str = "") -> None:
        rows.append(MetricRow(metric=metric, baseline=b, candidate=c, delta=c - b, outcome=outcome, note=note))

    b, c = base.metric("total_return_pct"), cand.metric("total_return_pct")
    scalar("return %", b, c, _by_test(c - b, tol.return_pct, test_outcome))
    b, c = base.metric("sharpe"), cand.metric("sharpe")
    scalar("sharpe", b, c, _by_test(c - b, tol.sharpe, test_outcome))

    b, c = base.worst_drawdown(), cand.worst_drawdown()
    floor_breached = c > tol.drawdown_floor_pct
    too_small = test.n < tol.min_bars and not test.identical
    if test.identical or abs(c - b) <= tol.drawdown_pct:
        dd: Outcome = "same"
    elif too_small:
        dd = "inconclusive"
    else:
        dd = "worse" if c > b else "better"
    if floor_breached:
        dd = "worse"
    scalar("max drawdown %", b, c, dd, f"above the {tol.drawdown_floor_pct:g}% floor" if floor_breached else "")

    tb, tc = base.trades(), cand.trades()
    same_trades = abs(tc - tb) <= tol.trades_rel * max(tb, 1)
    scalar("trades", tb, tc, "same" if same_trades else "inconclusive", "informational")

    lb, lc = base.mean_latency(), cand.mean_latency()
    if lc > lb * (1 + tol.latency_rel) + tol.latency_abs_s:
        lat: Outcome = "worse"
    elif lc < lb / (1 + tol.latency_rel) - tol.latency_abs_s:
        lat = "better"
    else:
        lat = "same"
    scalar("decision latency s", lb, lc, lat, "wall time per bar")

    gating = [r for r in rows if r.note != "informational"]
    status: GateStatus
    if floor_breached or any(r.outcome == "worse" for r in gating):
        status = "fail"
    elif too_small or any(r.outcome == "inconclusive" for r in gating):
        status = "inconclusive"
    else:
        status = "pass"
    worse = [r.metric for r in gating if r.outcome == "worse"]
    if status == "fail":
        summary = "worse: " + ", ".join(worse)
    elif too_small:
        summary = f"too little data ({test.n} paired bars < {tol.min_bars})"
    elif status == "inconclusive":
        summary = "not significantly different: " + ", ".join(r.metric for r in gating if r.outcome == "inconclusive")
    else:
        summary = "no metric worse"
    return GateResult(
        gate=GATE,
        status=status,
        summary=summary,
        duration_s=time.perf_counter() - t0,
        metrics=rows,
        details={"datasets": list(datasets), "paired_bars": test.n, "test": test.method},
    )


def run_benchmark_gate(
    candidate: Path,
    baseline: Path,
    datasets: Mapping[str, Dataset] | None = None,
    tolerances: Tolerances | None = None,
    broker: BrokerSettings | None = None,
    risk: RiskSettings | None = None,
) -> GateResult:
    """In-process benchmark; a strategy or cascade that does not load makes the gate "error"."""
    t0 = time.perf_counter()
    try:
        return compare(candidate, baseline, datasets, tolerances, broker, risk)
    except Exception as exc:  # noqa: BLE001 - any failure of candidate code is a gate error
        return GateResult(
            gate=GATE, status="error", summary=f"{type(exc).__name__}: {exc}"[:500], duration_s=time.perf_counter() - t0
        )


def run_benchmark_gate_in(
    runner: Runner,
    worktree: Path,
    baseline: Path,
    *,
    tolerances: Tolerances | None = None,
    limits: Any = None,
) -> GateResult:
    """Run the benchmark through ``runner`` (the sandbox): ``python -m guardian.gates.benchmark``."""
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "guardian.gates.benchmark", "--candidate", ".", "--baseline", str(baseline)]
    if tolerances is not None:
        command += ["--tolerances", tolerances.model_dump_json()]
    command += ["--out", f"{OUT}/benchmark.json"]
    result = runner(command, worktree, limits if limits is not None else {})
    elapsed = time.perf_counter() - t0
    if result.timed_out:
        return GateResult(gate=GATE, status="timeout", summary="benchmark timed out", duration_s=elapsed)
    data = read_output(result, "benchmark.json")
    if data is None:
        tail = (result.stderr or result.stdout or "").strip()[-300:]
        return GateResult(gate=GATE, status="error", summary=f"no benchmark report: {tail}", duration_s=elapsed)
    gate = GateResult.model_validate_json(data)
    gate.duration_s = elapsed
    return gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--tolerances", default=None, help="Tolerances as JSON")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tol = Tolerances.model_validate(json.loads(args.tolerances)) if args.tolerances else None
    gate = run_benchmark_gate(args.candidate, args.baseline, tolerances=tol)
    args.out.write_text(gate.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
