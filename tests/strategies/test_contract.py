"""The strategy contract: what every module in ``strategies/`` must keep true.

This folder is the suite the guardian's tests gate runs on a candidate branch, inside the
sandbox. Strategies are discovered from the tree under test (``REPO_ROOT/strategies``), so
a strategy a candidate adds is held to the same contract as the shipped ones. Everything
here is fast, offline and writes nothing: the data are backtesting.py's bundled GOOG
series (via the ``goog`` fixture) and the seeded demo market.

A strategy's code never runs in this process: every test reaches it through a
``StrategyHost`` worker, and the guardian runs this suite under ``guardian.harness``,
which refuses to execute a file of ``strategies/`` here. The parameters, the docstring and
the cascade definition are read from the source as literals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sorte.config import REPO_ROOT, BrokerSettings, RiskSettings
from sorte.runtime import demo
from sorte.runtime.backtest import run_backtest
from sorte.runtime.cascade import build_cascade, read_cascade, single_strategy_cascade
from sorte.runtime.data import to_ohlcv
from sorte.runtime.strategy import available_strategies, read_description, read_param_specs
from sorte.runtime.strategy_host import RemoteStrategy, StrategyHost
from sorte.runtime.values import Ohlcv

STRATEGIES = REPO_ROOT / "strategies"
NAMES = available_strategies(STRATEGIES)
SIDES = {-1, 0, 1}


def decisions(strategy: RemoteStrategy, bars: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    score, side, reason = strategy.signals(bars)
    return np.asarray(score), np.asarray(side), np.asarray(reason)


def copy_bars(o: Ohlcv) -> Ohlcv:
    return Ohlcv(o.ts.copy(), o.open.copy(), o.high.copy(), o.low.copy(), o.close.copy(), o.volume.copy(), o.interval_s)


def cut_points(n: int, lookback: int) -> list[int]:
    """Bars at which the past must be enough: just after warm-up, spread out, and the end."""
    first = min(max(lookback + 1, 2), n - 1)
    return sorted({first, first + 1, n // 5, n // 3, n // 2, (2 * n) // 3, n - 7, n - 2} & set(range(first, n - 1)))


@pytest.fixture(scope="module")
def host():
    """The worker every test reaches the strategies through (confined as far as the machine allows)."""
    with StrategyHost(STRATEGIES) as h:
        yield h


@pytest.fixture(scope="module")
def goog_bars(goog: pd.DataFrame) -> Ohlcv:
    return to_ohlcv(goog)


def test_strategies_are_discovered_from_the_tree_under_test():
    assert STRATEGIES.is_dir(), STRATEGIES
    assert NAMES, f"no strategy modules in {STRATEGIES}"
    assert "cascade" not in NAMES and "prompts" not in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_params_are_declared_typed_and_in_bounds(name):
    specs = read_param_specs(STRATEGIES / f"{name}.py")  # read without importing the module
    for pname, spec in specs.items():
        assert pname.isidentifier(), pname
        assert spec.doc.strip(), f"{name}.{pname} has no doc"
        default = spec.default
        if spec.type == "bool":
            assert isinstance(default, bool), (pname, default)
            continue
        assert isinstance(default, (int, float)) and not isinstance(default, bool), (pname, default)
        assert math.isfinite(default), (pname, default)
        if spec.type == "int":
            assert float(default) == int(default), (pname, default)
        if spec.min is not None and spec.max is not None:
            assert spec.min <= spec.max, (pname, spec.min, spec.max)
        assert spec.min is None or default >= spec.min, (pname, default, spec.min)
        assert spec.max is None or default <= spec.max, (pname, default, spec.max)


@pytest.mark.parametrize("name", NAMES)
def test_module_loads_with_its_defaults(name, host):
    s = host.strategy(name)
    assert set(s.params.as_dict()) == set(s.specs)
    lookback = s.lookback()
    assert isinstance(lookback, int) and lookback >= 1, lookback
    assert read_description(STRATEGIES / f"{name}.py"), f"{name} has no module docstring"


def assert_valid(name: str, n: int, score: np.ndarray, side: np.ndarray, reason: np.ndarray) -> None:
    assert score.shape == side.shape == reason.shape == (n,), (name, score.shape, side.shape, reason.shape)
    assert np.issubdtype(score.dtype, np.number), score.dtype
    assert np.all(np.isfinite(score)), f"{name}: non-finite scores"
    assert np.all((score >= 0) & (score <= 1)), f"{name}: scores outside [0, 1]: {score[(score < 0) | (score > 1)][:5]}"
    assert set(np.unique(side).tolist()) <= SIDES, f"{name}: sides {set(np.unique(side).tolist())}"
    assert all(isinstance(r, str) and r.strip() for r in reason[side != 0]), f"{name}: a signal without a reason"


@pytest.mark.parametrize("name", NAMES)
def test_decisions_are_valid_on_real_data(name, host, goog_bars):
    s = host.strategy(name)
    score, side, reason = decisions(s, goog_bars)
    assert_valid(name, len(goog_bars), score, side, reason)
    assert (side != 0).any(), f"{name} never proposes a side on years of GOOG"


@pytest.mark.parametrize("bound", ["min", "max"])
@pytest.mark.parametrize("name", NAMES)
def test_decisions_stay_valid_with_parameters_at_their_bounds(name, bound, host, goog_bars):
    specs = read_param_specs(STRATEGIES / f"{name}.py")
    at = {p: (spec.min if bound == "min" else spec.max) for p, spec in specs.items() if spec.type != "bool"}
    values = {p: v for p, v in at.items() if v is not None}
    values = {p: int(v) if specs[p].type == "int" else v for p, v in values.items()}
    s = host.strategy(name, values)
    bars = goog_bars.window(799, 800)
    assert_valid(name, len(bars), *decisions(s, bars))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_does_not_mutate_its_input(name, host, goog_bars):
    s = host.strategy(name)
    bars = copy_bars(goog_bars)
    first = decisions(s, bars)
    columns = {
        "ts": (bars.ts, goog_bars.ts),
        "open": (bars.open, goog_bars.open),
        "high": (bars.high, goog_bars.high),
        "low": (bars.low, goog_bars.low),
        "close": (bars.close, goog_bars.close),
        "volume": (bars.volume, goog_bars.volume),
    }
    for column, (after, before) in columns.items():
        assert np.array_equal(after, before, equal_nan=True), column
    second = decisions(s, copy_bars(goog_bars))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[2], second[2])


@pytest.mark.parametrize("name", NAMES)
def test_no_lookahead_truncated_history_gives_the_same_decisions(name, host, goog_bars):
    """Decisions up to bar t may use bars 0..t only: cutting the future off changes nothing."""
    s = host.strategy(name)
    full_score, full_side, full_reason = decisions(s, goog_bars)
    n = len(goog_bars)
    # A peek at bar t + k shows at bar t itself: cut at signal bars (and just before them,
    # where a peek would move a signal earlier), plus spread-out bars.
    signals = np.flatnonzero(full_side != 0)
    signals = signals[:: max(1, len(signals) // 40)]
    near = {int(i) + d for i in signals for d in (-1, 0)}
    for t in sorted(set(cut_points(n, s.lookback())) | {t for t in near if 1 <= t < n - 1}):
        past = goog_bars.window(t, t + 1)  # bars 0..t
        score, side, reason = decisions(s, copy_bars(past))
        np.testing.assert_allclose(score, full_score[: t + 1], rtol=1e-9, atol=1e-12, err_msg=f"{name}: score, cut {t}")
        np.testing.assert_array_equal(side, full_side[: t + 1], err_msg=f"{name}: side, cut at bar {t}")
        np.testing.assert_array_equal(reason, full_reason[: t + 1], err_msg=f"{name}: reason, cut at bar {t}")


@pytest.mark.parametrize("name", NAMES)
def test_lookback_is_enough_for_the_live_trailing_window(name, host, goog_bars):
    """The live runtime sees only ``lookback`` bars: its decision equals the backtest's."""
    cascade = single_strategy_cascade(name, STRATEGIES, host=host)
    batch = cascade.evaluate_batch(goog_bars)
    side = np.asarray(batch.side)
    acting = np.flatnonzero(np.asarray(batch.act))
    points = set(cut_points(len(goog_bars), cascade.window)) | set(acting[:: max(1, len(acting) // 8)].tolist())
    for t in sorted(points):
        d = cascade.evaluate_last("X", t, goog_bars.window(t, cascade.window))
        if batch.act[t]:
            assert d is not None, f"{name}: bar {t} acts in the backtest, not live"
            assert d.side == side[t] and d.confidence == pytest.approx(batch.confidence[t], abs=1e-12), t
        else:
            assert d is None, f"{name}: bar {t} acts live, not in the backtest"


def test_cascade_definition_loads_and_references_existing_strategies(host):
    definition = read_cascade(STRATEGIES / "cascade.py")  # literals, read without import
    assert 0.0 <= definition.min_confidence <= 1.0
    referenced = {s.strategy for s in definition.stages if s.kind == "strategy"}
    missing = referenced - set(NAMES)
    assert not missing, f"cascade references unknown strategies: {sorted(missing)}"
    for stage in definition.stages:
        assert 0.0 <= stage.threshold <= 1.0 and stage.weight > 0, stage.name
    cascade = build_cascade(definition, STRATEGIES, host=host)
    assert [s.name for s in cascade.stages] == [s.name for s in definition.enabled_stages]
    assert cascade.window >= 1


@pytest.fixture(scope="module")
def demo_market() -> dict[str, pd.DataFrame]:
    return demo.generate(n_symbols=2, n_bars=300, seed=1)


def assert_finite_metrics(result, n_bars: int) -> None:
    metrics = result.metrics.model_dump()
    for key, value in metrics.items():
        assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    assert metrics["final_equity"] > 0
    assert metrics["trades"] >= 0 and metrics["decisions"] >= 0
    assert metrics["bars"] >= n_bars
    assert np.all(np.isfinite(result.equity.to_numpy(dtype=float)))


def test_configured_cascade_backtests_with_finite_metrics(host, demo_market):
    cascade = build_cascade(read_cascade(STRATEGIES / "cascade.py"), STRATEGIES, host=host)
    result = run_backtest(cascade, demo_market, BrokerSettings(), RiskSettings())
    assert_finite_metrics(result, 300)


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_backtests_alone_with_finite_metrics(name, host, demo_market):
    cascade = single_strategy_cascade(name, STRATEGIES, host=host)
    result = run_backtest(cascade, demo_market, BrokerSettings(), RiskSettings())
    assert_finite_metrics(result, 300)
    for d in result.decisions:
        assert d.side in (-1, 1) and 0.0 <= d.confidence <= 1.0 and d.strategy == name
