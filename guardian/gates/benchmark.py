"""Benchmark gate: backtest candidate and baseline on the same fixed data, compare with a paired test.

Each side is a directory with its own ``strategies/`` (cascade definition + modules).
Both run on the same data sets (the seeded demo market by default); per-bar portfolio
returns are paired and compared with a seeded bootstrap CI of the mean difference.
Metrics: return, Sharpe, max drawdown, number of trades and decision latency, each
better / same / worse / inconclusive under :class:`Tolerances`. A candidate drawdown
above ``drawdown_floor_pct`` fails whatever else. Identical code comes out "same".

Strategy code of either side only ever runs in a confined strategy worker
(``sorte.runtime.strategy_host``: a container or the local namespaces, no secret, no network,
no writable file system) that answers signals. The backtest itself (executor, paper broker,
equity, metrics) and the :class:`SideReport` are computed in this trusted process from those
signals, so a candidate can choose its decisions but never write its own figures; then
:func:`compare_reports` judges the two reports. Latency is CPU time per bar (this process's
and the worker's, as the kernel counts them), so a busy machine does not make a candidate
look slower.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from guardian.gates import Runner
from guardian.stats import Outcome, PairedTest, paired_bootstrap
from guardian.verdict import Finding, GateResult, GateStatus, MetricRow
from sandbox.contract import coerce_limits
from sorte.config import BrokerSettings, RiskSettings
from sorte.errors import CascadeError, StrategyError
from sorte.runtime.backtest import BacktestResult, run_backtest
from sorte.runtime.cascade import build_cascade, read_cascade
from sorte.runtime.strategy_host import OUT_OF_MEMORY, StrategyFault, StrategyHost

GATE = "benchmark"
DEMO_SEEDS = (11, 23, 37)

Dataset = dict[str, pd.DataFrame]


class Tolerances(BaseModel):
    """Differences within these bounds count as "same"."""

    model_config = {"extra": "forbid"}

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


class DatasetRun(BaseModel):
    """One side's backtest on one data set: what the comparison needs, nothing executable."""

    times: list[str]
    returns: list[float]  # per-bar portfolio returns, aligned with ``times``
    total_return_pct: float
    sharpe: float
    max_drawdown_pct: float
    trades: int
    cpu_s_per_bar: float


class SideReport(BaseModel):
    """A tree's backtests on every data set, written by ``python -m guardian.gates.benchmark --side``."""

    datasets: dict[str, DatasetRun]

    def metric(self, attr: str) -> float:
        return float(np.mean([getattr(r, attr) for r in self.datasets.values()]))

    def worst_drawdown(self) -> float:
        return float(max(abs(r.max_drawdown_pct) for r in self.datasets.values()))

    def trades(self) -> int:
        return int(sum(r.trades for r in self.datasets.values()))


#: Strategy hosts of the sides running now, so that a cancelled validation (Ctrl-C, fail fast)
#: stops their workers instead of waiting for their answers.
_live_hosts: dict[StrategyHost, int] = {}  # host -> id of the runner's owner (one validation)
_cancelled: set[int] = set()  # owners whose sides must stop, also those still starting a worker
_live_lock = threading.Lock()


def cancel_sides(owner: object) -> None:
    """Stop the benchmark sides started for ``owner`` (a validation's sandbox backend), now and
    later: their workers are killed, so their backtests end at once as faults, not at a timeout."""
    with _live_lock:
        _cancelled.add(id(owner))
        hosts = [h for h, o in _live_hosts.items() if o == id(owner)]
    for host in hosts:
        host.close()


def forget_sides(owner: object) -> None:
    """``owner``'s validation is over: a later owner with the same id starts uncancelled."""
    with _live_lock:
        _cancelled.discard(id(owner))


def _register(host: StrategyHost, owner: object) -> None:
    with _live_lock:
        _live_hosts[host] = id(owner)
        cancelled = id(owner) in _cancelled
    if cancelled:  # cancelled while this worker was starting
        host.close()


def run_side(
    root: Path,
    datasets: Mapping[str, Dataset] | None = None,
    broker: BrokerSettings | None = None,
    risk: RiskSettings | None = None,
    *,
    backend: str = "local",
    memory_mb: int = 1024,
    call_timeout_s: float = 60.0,
    owner: object = None,
) -> SideReport:
    """Backtest the cascade of ``root/strategies`` on every data set.

    The backtest (executor, broker, metrics) runs here, in the trusted process; the tree's
    strategy code runs in a confined worker (``backend``: docker or local) that only answers
    signals. CPU time is this process's plus the worker's as the kernel counts it."""
    strategies = Path(root) / "strategies"
    definition = read_cascade(strategies / "cascade.py")  # a literal: read, not executed
    datasets = datasets if datasets is not None else demo_datasets()
    runs: dict[str, DatasetRun] = {}
    with StrategyHost(strategies, backend=backend, memory_mb=memory_mb, call_timeout_s=call_timeout_s) as host:
        _register(host, owner)
        try:
            runs = _backtests(host, definition, strategies, datasets, broker, risk)
        finally:
            with _live_lock:
                _live_hosts.pop(host, None)
    return SideReport(datasets=runs)


def _backtests(
    host: StrategyHost,
    definition: Any,
    strategies: Path,
    datasets: Mapping[str, Dataset],
    broker: BrokerSettings | None,
    risk: RiskSettings | None,
) -> dict[str, DatasetRun]:
    runs: dict[str, DatasetRun] = {}
    for name, data in datasets.items():
        cascade = build_cascade(definition, strategies, host=host)
        # CPU time, not wall time: sides may run side by side with other gates on a busy machine.
        t0 = time.process_time() + host.cpu_seconds()
        res: BacktestResult = run_backtest(cascade, data, broker or BrokerSettings(), risk or RiskSettings())
        cpu = time.process_time() + host.cpu_seconds() - t0
        runs[name] = _dataset_run(res, cpu, sum(len(f) for f in data.values()))
    return runs


def _dataset_run(res: BacktestResult, cpu_s: float, n_bars: int) -> DatasetRun:
    eq, m = res.equity, res.metrics
    return DatasetRun(
        times=[str(t) for t in eq.index],
        returns=eq.pct_change().fillna(0.0).astype(float).tolist(),
        total_return_pct=float(m.total_return_pct),
        sharpe=float(m.sharpe),
        max_drawdown_pct=float(m.max_drawdown_pct),
        trades=int(m.trades),
        cpu_s_per_bar=cpu_s / max(1, n_bars),
    )


def _by_test(delta: float, tol: float, test: Outcome) -> Outcome:
    """Scalar metric (higher is better) judged together with the paired test."""
    if test == "same" or abs(delta) <= tol:
        return "same"
    if delta > 0:
        return "better" if test == "better" else "inconclusive"
    return "worse" if test == "worse" else "inconclusive"


def _paired(base: SideReport, cand: SideReport) -> tuple[np.ndarray, np.ndarray]:
    missing = sorted(set(base.datasets) ^ set(cand.datasets))
    if missing:
        raise ValueError(f"the sides ran on different data sets: {', '.join(missing)}")
    pairs_c, pairs_b = [], []
    for name, b in base.datasets.items():
        c = cand.datasets[name]
        rb = pd.Series(b.returns, index=b.times, name="b")
        rc = pd.Series(c.returns, index=c.times, name="c")
        joined = pd.concat([rc, rb], axis=1, join="inner")
        pairs_c.append(joined["c"].to_numpy())
        pairs_b.append(joined["b"].to_numpy())
    return np.concatenate(pairs_c), np.concatenate(pairs_b)


def compare_reports(base: SideReport, cand: SideReport, tolerances: Tolerances | None = None) -> GateResult:
    """Judge the candidate against the baseline from their side reports (no strategy code runs here)."""
    t0 = time.perf_counter()
    tol = tolerances or Tolerances()
    c_ret, b_ret = _paired(base, cand)
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

    lb, lc = base.metric("cpu_s_per_bar"), cand.metric("cpu_s_per_bar")
    if lc > lb * (1 + tol.latency_rel) + tol.latency_abs_s:
        lat: Outcome = "worse"
    elif lc < lb / (1 + tol.latency_rel) - tol.latency_abs_s:
        lat = "better"
    else:
        lat = "same"
    scalar("decision latency s", lb, lc, lat, "CPU time per bar")

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
        details={"datasets": list(base.datasets), "paired_bars": test.n, "test": test.method},
    )


def compare(
    candidate: Path,
    baseline: Path,
    datasets: Mapping[str, Dataset] | None = None,
    tolerances: Tolerances | None = None,
    broker: BrokerSettings | None = None,
    risk: RiskSettings | None = None,
) -> GateResult:
    """Both sides in this process, then :func:`compare_reports` (trusted trees only)."""
    t0 = time.perf_counter()
    datasets = datasets if datasets is not None else demo_datasets()
    base = run_side(baseline, datasets, broker, risk)
    cand = run_side(candidate, datasets, broker, risk)
    gate = compare_reports(base, cand, tolerances)
    gate.duration_s = time.perf_counter() - t0
    return gate


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


def _backend_of(runner: Runner | None) -> str:
    """The confinement matching a gate runner: the Docker sandbox's runs mean a container."""
    return "docker" if getattr(getattr(runner, "__self__", None), "name", "") == "docker" else "local"


def run_side_in(runner: Runner | None, tree: Path, *, limits: Any = None) -> SideReport | GateResult:
    """One side's backtests, its strategy code confined like ``runner``'s runs (Docker or local);
    a GateResult when they did not finish. The report is computed here, from the worker's
    signals: the tree's code never writes any part of it."""
    t0 = time.perf_counter()
    lim = coerce_limits(limits)
    backend = _backend_of(runner)
    try:
        report = run_side(
            tree,
            backend=backend,
            memory_mb=max(128, lim.memory_bytes // (1024 * 1024)),
            call_timeout_s=min(lim.timeout_s, 120.0),
            owner=getattr(runner, "__self__", runner),
        )
    except StrategyFault as exc:
        status: GateStatus = "timeout" if "did not answer" in str(exc) else "fail"
        return _crashed(status, str(exc), time.perf_counter() - t0)
    except (StrategyError, CascadeError) as exc:
        return _crashed("fail", str(exc), time.perf_counter() - t0)
    elapsed = time.perf_counter() - t0
    if elapsed > lim.timeout_s:
        return GateResult(gate=GATE, status="timeout", summary="backtest timed out", duration_s=elapsed)
    return report


def _crashed(status: GateStatus, message: str, elapsed: float) -> GateResult:
    if status == "timeout":
        summary = "backtest timed out"
    elif OUT_OF_MEMORY in message or "MemoryError" in message:
        summary = "backtest killed: out of memory"
    else:
        summary = f"backtest crashed: {message}"[:300]
    return GateResult(
        gate=GATE,
        status=status,
        summary=summary,
        duration_s=elapsed,
        findings=[Finding(gate=GATE, rule="backtest-crash", message=message[-1500:], severity="high")],
    )


def run_benchmark_gate_in(
    runner: Runner,
    worktree: Path,
    baseline: Path | SideReport,
    *,
    tolerances: Tolerances | None = None,
    limits: Any = None,
) -> GateResult:
    """Each side backtests in its own run of ``runner``; the comparison happens here, so candidate
    code never runs in the process that judges it. ``baseline`` is a tree or its cached report."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        cand_f = pool.submit(run_side_in, runner, worktree, limits=limits)
        base: SideReport | GateResult
        if isinstance(baseline, SideReport):
            cand, base = cand_f.result(), baseline
        else:
            base_f = pool.submit(run_side_in, runner, baseline, limits=limits)
            cand, base = cand_f.result(), base_f.result()
    elapsed = time.perf_counter() - t0
    if isinstance(cand, GateResult):
        cand.duration_s = elapsed
        return cand
    if isinstance(base, GateResult):
        return GateResult(
            gate=GATE, status="error", summary=f"baseline: {base.status}: {base.summary}", duration_s=elapsed
        )
    try:
        gate = compare_reports(base, cand, tolerances)
    except ValueError as exc:
        return GateResult(gate=GATE, status="error", summary=str(exc), duration_s=elapsed)
    gate.duration_s = elapsed
    return gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=Path, required=True, help="candidate tree")
    parser.add_argument("--baseline", type=Path, required=True, help="baseline tree")
    parser.add_argument("--tolerances", default=None, help="Tolerances as JSON")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tol = Tolerances.model_validate(json.loads(args.tolerances)) if args.tolerances else None
    gate = run_benchmark_gate(args.candidate, args.baseline, tolerances=tol)
    args.out.write_text(gate.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
