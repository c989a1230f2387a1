"""The optimise intent's parameter search: the grid, the sandboxed entry point and the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import branch, copy_project

from guardian.gates import LocalResult, subprocess_runner
from guardian.gates.benchmark import Tolerances
from sorte.agent.search import (
    SHARPE_MARGIN,
    CandidateResult,
    SearchError,
    build_grid,
    choose,
    make_plan,
    param_values,
    pick_params,
    search,
)
from sorte.config import GitSettings, Settings
from sorte.editing.apply import apply_plan
from sorte.errors import StrategyError
from sorte.runtime.strategy import ParamSpec, read_param_specs

MOMENTUM = Path(__file__).resolve().parents[2] / "strategies" / "momentum.py"


def specs() -> dict[str, ParamSpec]:
    return read_param_specs(MOMENTUM)


# --------------------------------------------------------------------------- the grid


@pytest.mark.parametrize("cap", [1, 5, 8, 24, 50])
def test_grid_respects_bounds_types_and_cap(cap: int) -> None:
    s = specs()
    grid = build_grid(s, max_candidates=cap)
    assert 1 <= len(grid) <= cap
    defaults = {k: v.default for k, v in s.items()}
    assert defaults not in grid  # the defaults are the baseline, run anyway
    for point in grid:
        assert set(point) == set(s)
        for name, value in point.items():
            spec = s[name]
            assert spec.min <= value <= spec.max
            if spec.type == "int":
                assert type(value) is int
    assert len({tuple(sorted(p.items())) for p in grid}) == len(grid)  # no duplicates


def test_grid_varies_first_numeric_params_keeps_the_rest_and_includes_the_default() -> None:
    s = specs()
    grid = build_grid(s)
    assert len(grid) <= 24
    varied = {k for p in grid for k, v in p.items() if v != s[k].default}
    assert varied == {"fast", "slow"}
    fasts = {p["fast"] for p in grid}
    slows = {p["slow"] for p in grid}
    assert s["fast"].default in fasts and s["slow"].default in slows
    assert len(fasts) >= 3 and len(slows) >= 3


def test_grid_is_deterministic() -> None:
    assert build_grid(specs(), "tune momentum") == build_grid(specs(), "tune momentum")


def test_grid_follows_the_request() -> None:
    s = specs()
    assert pick_params(s, "otimiza o stop loss do momentum") == ["stop_loss"]
    assert pick_params(s, "optimise take_profit and stop-loss") == ["stop_loss", "take_profit"]
    grid = build_grid(s, "optimise the stop loss", max_candidates=6)
    assert {k for p in grid for k, v in p.items() if v != s[k].default} == {"stop_loss"}
    assert len(grid) <= 6
    assert pick_params(s, "", params=["min_hold_s"]) == ["min_hold_s"]
    with pytest.raises(StrategyError, match="no parameter nope"):
        pick_params(s, "", params=["nope"])


def test_int_values_rounded_and_deduplicated_bools_skipped() -> None:
    narrow = ParamSpec(type="int", default=3, min=2, max=4, doc="narrow")
    assert param_values(narrow, 6) == [2, 3, 4]
    flag = ParamSpec(type="bool", default=True, doc="flag")
    assert build_grid({"flag": flag}) == []
    assert pick_params({"flag": flag, "n": narrow}, "flag") == ["n"]
    unbounded = ParamSpec(type="float", default=2.0, doc="no bounds")
    values = param_values(unbounded, 4)
    assert 2.0 in values and len(values) >= 3 and all(0 < v < 10 for v in values)


# --------------------------------------------------------------------------- choosing


def row(sharpe: float, ret: float, dd: float, **params: float) -> CandidateResult:
    return CandidateResult(params=params, sharpe=sharpe, total_return_pct=ret, max_drawdown_pct=dd, trades=10)


def test_choose_needs_a_margin_a_return_and_a_drawdown_within_the_floor() -> None:
    base = row(1.0, 2.0, 5.0, fast=10)
    floor = Tolerances().drawdown_floor_pct
    assert choose(base, [row(1.0 + SHARPE_MARGIN / 2, 3.0, 5.0, fast=11)], floor) is None
    assert choose(base, [row(2.0, 1.0, 5.0, fast=12)], floor) is None  # lower return
    assert choose(base, [row(3.0, 9.0, floor + 1, fast=13)], floor) is None  # drawdown above the floor
    idle = row(3.0, 9.0, 1.0, fast=18)
    idle.trades = 0
    assert choose(base, [idle], floor) is None  # never trades
    rows = [row(1.5, 2.5, 5, fast=14), row(2.0, 2.0, 6, fast=15), row(2.0, 3.0, 6, fast=16), row(9, 9, 6, fast=17)]
    rows[3].error = "boom"
    best = choose(base, rows, floor)
    assert best is not None and best.params == {"fast": 16}
    plan = make_plan("momentum", base, best)
    assert plan.summary.startswith("Optimise momentum: fast 10→16 (Sharpe 1.00→2.00")
    assert [(op.op, op.name, op.value) for op in plan.ops] == [("set_param", "fast", 16)]


# --------------------------------------------------------------------------- the whole search


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_project(tmp_path_factory.mktemp("project"))
    flags = '"""Flags only."""\n\nPARAMS = {"on": {"type": "bool", "default": True, "doc": "A flag."}}\n'
    branch(repo, "flags-only", {"strategies/flags.py": flags})
    return repo


def settings_for(repo: Path, tmp_path: Path, sandbox: str = "local") -> Settings:
    return Settings(
        data_dir=tmp_path / "var", strategies_dir=repo / "strategies", git=GitSettings(repo_root=repo), sandbox=sandbox
    )


@pytest.mark.slow
def test_search_in_a_subprocess_finds_a_plan_that_applies(project: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = search(
        settings_for(project, tmp_path),
        "momentum",
        "optimise momentum",
        runner=subprocess_runner,
        max_candidates=12,
        progress=lambda done, total: seen.append((done, total)),
    )
    n = len(result.candidates)
    assert 1 <= n <= 12 and seen == [(0, n), (n, n)]
    assert result.varied == ["fast", "slow"]
    assert result.base.startswith("main@")
    assert result.datasets == ["demo-11", "demo-23", "demo-37"]
    assert result.baseline.params["fast"] == 10 and result.baseline.error is None
    assert all(c.error is None for c in result.candidates)
    floor = Tolerances().drawdown_floor_pct
    if result.best is None:
        assert result.plan is None
        assert all(
            c.sharpe <= result.baseline.sharpe + SHARPE_MARGIN
            or c.total_return_pct < result.baseline.total_return_pct
            or c.max_drawdown_pct > floor
            or c.trades == 0
            for c in result.candidates
        )
        return
    best = result.best
    assert best.sharpe > result.baseline.sharpe + SHARPE_MARGIN
    assert best.total_return_pct >= result.baseline.total_return_pct
    assert best.max_drawdown_pct <= floor and best.trades > 0
    assert result.plan is not None and result.plan.summary.startswith("Optimise momentum: ")
    assert "on the benchmark markets" in result.plan.summary
    changed = {op.name: op.value for op in result.plan.ops}
    assert changed and all(best.params[k] == v != result.baseline.params[k] for k, v in changed.items())
    edit = apply_plan(result.plan, project, write=False)
    assert list(edit.changed) == ["strategies/momentum.py"]
    assert "strategies/momentum.py" in edit.diff


def test_unknown_strategy_lists_the_known_ones(project: Path, tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"unknown strategy 'nope'.*available: breakout, mean_reversion, momentum"):
        search(settings_for(project, tmp_path), "nope", runner=subprocess_runner)


def test_strategy_without_numeric_params(project: Path, tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="no numeric parameter"):
        search(settings_for(project, tmp_path), "flags", runner=subprocess_runner, base="flags-only")


def test_sandbox_failure_reports_the_stderr_tail(project: Path, tmp_path: Path) -> None:
    def broken(command: list[str], worktree: Path, limits: object) -> LocalResult:
        return LocalResult(1, "", "Traceback (most recent call last):\nRuntimeError: sandbox exploded")

    with pytest.raises(SearchError, match=r"(?s)failed \(exit 1\).*sandbox exploded"):
        search(settings_for(project, tmp_path), "momentum", runner=broken)

    def slow(command: list[str], worktree: Path, limits: object) -> LocalResult:
        return LocalResult(-9, "", "", timed_out=True)

    with pytest.raises(SearchError, match="timed out"):
        search(settings_for(project, tmp_path), "momentum", runner=slow)


@pytest.mark.docker
@pytest.mark.slow
def test_search_in_the_docker_sandbox(project: Path, tmp_path: Path) -> None:
    require_docker()
    result = search(settings_for(project, tmp_path, sandbox="docker"), "momentum", "tune stop loss", max_candidates=6)
    assert result.varied == ["stop_loss"]
    assert 1 <= len(result.candidates) <= 6
    assert result.baseline.error is None and all(c.error is None for c in result.candidates)
    if result.plan is not None:
        assert [op.name for op in result.plan.ops] == ["stop_loss"]
        apply_plan(result.plan, project, write=False)
