"""The agent's "optimise" intent: a grid search over a strategy's declared parameter bounds.

:func:`build_grid` turns a strategy's ``PARAMS`` (read without importing it) into at most
``max_candidates`` parameter sets: a few values across ``[min, max]`` of the parameters the
request names (else the first numeric ones), the default always among them, the others
kept at their defaults. :func:`search` exports the base branch with ``git archive`` and runs
``python -m sorte.agent.search`` in that tree through the sandbox (the same runner
convention as the guardian's gates): the strategy alone is backtested with every candidate
and with its defaults on the guardian benchmark's seeded markets
(:func:`guardian.gates.benchmark.demo_datasets`), so candidate code never runs in the host
process. The best candidate by Sharpe (then return) whose drawdown stays within the
guardian's floor and which beats the defaults by a margin becomes an ordinary
:class:`~sorte.editing.plan.EditPlan` of ``set_param`` operations, which then goes through
validate and approve like any other change.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sorte import paths
from sorte.editing.plan import EditPlan, SetParam
from sorte.errors import SorteError, StrategyError

OUT_FILE = "search.json"
SHARPE_MARGIN = 0.05  # a candidate must beat the defaults' Sharpe by more than this
DEFAULT_VARIED = 2  # parameters varied when the request names none
MAX_LEVELS = 8  # values per varied parameter at most

Value = int | float | bool
#: progress(done, total): called with 0 before the sandboxed run and with total after it.
Progress = Callable[[int, int], None]


class SearchError(SorteError):
    """A parameter search that could not run or whose sandboxed backtests failed."""


class CandidateResult(BaseModel):
    """One parameter set's backtests, averaged over the benchmark markets."""

    params: dict[str, Value]
    total_return_pct: float = 0.0  # mean over the data sets
    sharpe: float = 0.0  # mean over the data sets
    max_drawdown_pct: float = 0.0  # worst over the data sets (positive)
    trades: int = 0  # total over the data sets
    error: str | None = None  # set when this parameter set did not backtest


class SearchReport(BaseModel):
    """What the sandboxed entry point writes."""

    strategy: str
    datasets: list[str]
    baseline: CandidateResult
    candidates: list[CandidateResult]


class SearchResult(BaseModel):
    """The table of a search, its winner (if any) and the plan that applies it."""

    strategy: str
    base: str = ""  # the ref the search ran on, e.g. "main@0123456789"
    varied: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    baseline: CandidateResult
    candidates: list[CandidateResult]
    best: CandidateResult | None = None
    plan: EditPlan | None = None
    reason: str = ""  # why there is no plan, or what the plan does
    duration_s: float = 0.0


# --------------------------------------------------------------------------- the grid


def _numeric(specs: dict[str, Any]) -> list[str]:
    return [name for name, spec in specs.items() if spec.type in ("int", "float")]


def pick_params(specs: dict[str, Any], request: str = "", params: Sequence[str] | None = None) -> list[str]:
    """The numeric parameters to vary: ``params`` if given, else those the request names
    (``stop_loss`` or "stop loss"), else the first :data:`DEFAULT_VARIED` numeric ones."""
    numeric = _numeric(specs)
    if not numeric:
        return []
    if params:
        unknown = [p for p in params if p not in specs]
        if unknown:
            raise StrategyError(f"no parameter {', '.join(unknown)} (has: {', '.join(specs)})")
        return [p for p in numeric if p in params]
    text = re.sub(r"[^a-z0-9]+", " ", request.lower())
    named = [p for p in numeric if re.search(rf"\b{re.escape(p.lower().replace('_', ' '))}\b", text)]
    return named or numeric[:DEFAULT_VARIED]


def _levels(count: int, max_candidates: int) -> list[int]:
    """Values per varied parameter, as even as possible, with a product <= max_candidates."""
    levels = [1] * count
    grown = True
    while grown:
        grown = False
        for i in range(count):
            if levels[i] >= MAX_LEVELS:
                continue
            product = math.prod(levels) // levels[i] * (levels[i] + 1)
            if product <= max_candidates:
                levels[i] += 1
                grown = True
    return levels


def _bounds(spec: Any) -> tuple[float, float]:
    default = float(spec.default)
    span = abs(default) or 1.0
    lo = float(spec.min) if spec.min is not None else (default / 4 if default > 0 else default - span)
    hi = float(spec.max) if spec.max is not None else (default * 4 if default > 0 else default + span)
    return lo, hi


def _round(spec: Any, value: float) -> int | float:
    lo, hi = _bounds(spec)
    value = min(max(value, lo), hi)
    if spec.type == "int":
        number = int(round(value))
        return min(max(number, math.ceil(lo)), math.floor(hi))
    return float(f"{value:.3g}")


def param_values(spec: Any, count: int) -> list[int | float]:
    """``count - 1`` values spread across the bounds (log-spaced over a wide positive range)
    plus the default, rounded to the type, de-duplicated and sorted."""
    default = spec.default
    if count <= 1:
        return [default]
    lo, hi = _bounds(spec)
    n = count - 1
    positions = [(i + 0.5) / n for i in range(n)]  # inside the range: the extremes are rarely useful
    if lo > 0 and hi / lo >= 10:
        raw = [lo * (hi / lo) ** t for t in positions]
    else:
        raw = [lo + (hi - lo) * t for t in positions]
    return sorted({default, *(_round(spec, v) for v in raw)})


def build_grid(
    specs: dict[str, Any],
    request: str = "",
    max_candidates: int = 24,
    params: Sequence[str] | None = None,
) -> list[dict[str, Value]]:
    """Parameter sets to try (full sets: every declared parameter), the defaults excluded.

    Deterministic: the same specs and request give the same list, in the same order."""
    if max_candidates < 1:
        raise ValueError("max_candidates must be at least 1")
    varied = pick_params(specs, request, params)
    if not varied:
        return []
    levels = _levels(len(varied), max_candidates + 1)  # +1: the all-defaults point is the baseline
    axes = [param_values(specs[name], n) for name, n in zip(varied, levels, strict=True)]
    defaults = {name: spec.default for name, spec in specs.items()}
    grid: list[dict[str, Value]] = []
    for combo in itertools.product(*axes):
        point = {**defaults, **dict(zip(varied, combo, strict=True))}
        if point != defaults:
            grid.append(point)
    return grid[:max_candidates]


# --------------------------------------------------------------------------- in the sandbox


def _backtest(name: str, strategies: Path, params: dict[str, Value], datasets: dict[str, Any]) -> CandidateResult:
    from sorte.config import BrokerSettings, RiskSettings
    from sorte.runtime.backtest import run_backtest
    from sorte.runtime.cascade import single_strategy_cascade

    returns, sharpes, drawdowns, trades = [], [], [], 0
    try:
        for data in datasets.values():
            cascade = single_strategy_cascade(name, strategies, params)
            m = run_backtest(cascade, data, BrokerSettings(), RiskSettings()).metrics
            returns.append(float(m.total_return_pct))
            sharpes.append(float(m.sharpe))
            drawdowns.append(abs(float(m.max_drawdown_pct)))
            trades += int(m.trades)
    except Exception as exc:  # noqa: BLE001 - a failing candidate is a row of the table, not a crash
        return CandidateResult(params=params, error=f"{type(exc).__name__}: {exc}"[:300])

    def finite(x: float) -> float:
        return x if math.isfinite(x) else 0.0

    return CandidateResult(
        params=params,
        total_return_pct=finite(sum(returns) / len(returns)),
        sharpe=finite(sum(sharpes) / len(sharpes)),
        max_drawdown_pct=finite(max(drawdowns)),
        trades=trades,
    )


def run_candidates(name: str, candidates: list[dict[str, Value]], root: Path = Path(".")) -> SearchReport:
    """Backtest ``root/strategies/<name>.py`` with its defaults and with every candidate on
    the benchmark's markets (executes that tree's code: call it only inside the sandbox)."""
    from guardian.gates.benchmark import demo_datasets
    from sorte.runtime.strategy import load_strategy

    strategies = Path(root) / "strategies"
    defaults = load_strategy(name, strategies).params.as_dict()
    datasets = demo_datasets()
    baseline = _backtest(name, strategies, defaults, datasets)
    rows = []
    for i, params in enumerate(candidates, 1):
        rows.append(_backtest(name, strategies, params, datasets))
        print(f"candidate {i}/{len(candidates)}", flush=True)
    return SearchReport(strategy=name, datasets=list(datasets), baseline=baseline, candidates=rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Backtest a strategy with each candidate parameter set.")
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--candidates", required=True, help="JSON list of parameter sets")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    candidates = json.loads(args.candidates)
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        parser.error("--candidates must be a JSON list of objects")
    report = run_candidates(args.strategy, candidates)
    args.out.write_text(report.model_dump_json())
    return 0


# --------------------------------------------------------------------------- on the host


def _fmt(value: Value) -> str:
    if isinstance(value, (bool, int)):
        return str(value)
    return f"{value:g}"


def choose(
    baseline: CandidateResult,
    candidates: list[CandidateResult],
    drawdown_floor_pct: float,
    drawdown_tol_pct: float = float("inf"),
    margin: float = SHARPE_MARGIN,
) -> CandidateResult | None:
    """The best candidate by Sharpe (then return) that keeps its drawdown within the floor and
    within ``drawdown_tol_pct`` of the defaults', trades at all, beats their Sharpe by more
    than ``margin`` and does not return less; None when none does."""
    if baseline.error:
        return None
    ok = [
        c
        for c in candidates
        if c.error is None
        and c.trades > 0  # never trading is not an improvement (e.g. fast == slow: no cross)
        and c.max_drawdown_pct <= drawdown_floor_pct
        and c.max_drawdown_pct <= baseline.max_drawdown_pct + drawdown_tol_pct
        and c.sharpe > baseline.sharpe + margin
        and c.total_return_pct >= baseline.total_return_pct
    ]
    if not ok:
        return None
    return max(ok, key=lambda c: (c.sharpe, c.total_return_pct, -candidates.index(c)))


def make_plan(strategy: str, baseline: CandidateResult, best: CandidateResult) -> EditPlan | None:
    """An EditPlan with one ``set_param`` per parameter that differs from its default."""
    changed = {k: v for k, v in best.params.items() if baseline.params.get(k) != v}
    if not changed:
        return None
    moves = ", ".join(f"{k} {_fmt(baseline.params[k])}→{_fmt(v)}" for k, v in changed.items())
    summary = (
        f"Optimise {strategy}: {moves} (Sharpe {baseline.sharpe:.2f}→{best.sharpe:.2f}, "
        f"return {baseline.total_return_pct:.2f}%→{best.total_return_pct:.2f}% on the benchmark markets)"
    )
    ops = [SetParam(strategy=strategy, name=k, value=v) for k, v in changed.items()]
    return EditPlan(summary=summary[:500], ops=ops)


def _limits(settings: Any) -> dict[str, Any]:
    g = settings.guardian
    memory = g.memory_mb * 1024 * 1024
    return {"timeout_s": g.benchmark_timeout_s, "memory_bytes": memory, "cpus": g.cpus, "pids": g.pids}


def _tail(result: Any) -> str:
    text = (getattr(result, "stderr", "") or getattr(result, "stdout", "") or "").strip()
    return text[-1500:] if text else "no output"


def search(
    settings: Any,
    strategy: str,
    request: str = "",
    runner: Any = None,
    max_candidates: int = 24,
    *,
    params: Sequence[str] | None = None,
    base: str | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Grid-search ``strategy``'s parameters on ``base`` (default: the base branch) in the sandbox.

    ``runner`` follows the guardian's convention (``runner(command, worktree, limits)``);
    None = the configured sandbox backend. Raises StrategyError for an unknown strategy or
    one without numeric parameters, SearchError when the sandboxed backtests fail."""
    from guardian.gates import OUT, read_output
    from guardian.gates.benchmark import Tolerances
    from guardian.workspace import export_tree, open_repository, resolve_baseline
    from sorte.runtime.strategy import available_strategies, read_param_specs

    t0 = time.perf_counter()
    repo = open_repository(paths.repo_root(settings))
    ref = resolve_baseline(repo, base or settings.git.base_branch)
    root = Path(tempfile.mkdtemp(prefix="sorte-search-"))
    try:
        tree = export_tree(repo, ref.sha, root / "tree")
        strategies = tree / "strategies"
        known = available_strategies(strategies) if strategies.is_dir() else []
        if strategy not in known:
            raise StrategyError(
                f"unknown strategy {strategy!r} on {ref.short()} (available: {', '.join(known) or 'none'})"
            )
        specs = read_param_specs(strategies / f"{strategy}.py")
        grid = build_grid(specs, request, max_candidates, params)
        if not grid:
            raise StrategyError(f"strategy {strategy!r} declares no numeric parameter to optimise")
        varied = pick_params(specs, request, params)
        if runner is None:
            from guardian.validate import sandbox_backend

            runner = sandbox_backend(settings).run
        command = [
            sys.executable,
            "-m",
            "sorte.agent.search",
            "--strategy",
            strategy,
            "--candidates",
            json.dumps(grid),
            "--out",
            f"{OUT}/{OUT_FILE}",
        ]
        if progress is not None:
            progress(0, len(grid))
        result = runner(command, tree, _limits(settings))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if getattr(result, "timed_out", False):
        raise SearchError(f"the parameter search of {strategy!r} timed out (guardian.benchmark_timeout_s)")
    if getattr(result, "oom_killed", False):
        raise SearchError(f"the parameter search of {strategy!r} ran out of memory (guardian.memory_mb)")
    data = read_output(result, OUT_FILE)
    if data is None:
        raise SearchError(
            f"the parameter search of {strategy!r} failed (exit {getattr(result, 'exit_code', '?')}): {_tail(result)}"
        )
    try:
        report = SearchReport.model_validate_json(data)
    except ValueError as exc:
        raise SearchError(f"unreadable search report: {exc}"[:500]) from None
    if report.baseline.error:
        raise SearchError(f"{strategy!r} does not backtest with its defaults: {report.baseline.error}")
    if progress is not None:
        progress(len(grid), len(grid))
    try:
        tol = Tolerances.model_validate(settings.guardian.tolerances)
    except ValueError:
        tol = Tolerances()
    best = choose(report.baseline, report.candidates, tol.drawdown_floor_pct, tol.drawdown_pct)
    plan = make_plan(strategy, report.baseline, best) if best is not None else None
    if plan is not None:
        reason = plan.summary
    else:
        reason = (
            f"no candidate of {len(report.candidates)} beat the defaults of {strategy} "
            f"(Sharpe {report.baseline.sharpe:.2f} + {SHARPE_MARGIN}, return not lower, some trades, drawdown within "
            f"{tol.drawdown_floor_pct:g}%)"
        )
    return SearchResult(
        strategy=strategy,
        base=ref.short(),
        varied=varied,
        datasets=report.datasets,
        baseline=report.baseline,
        candidates=report.candidates,
        best=best,
        plan=plan,
        reason=reason,
        duration_s=round(time.perf_counter() - t0, 3),
    )


if __name__ == "__main__":
    raise SystemExit(main())
