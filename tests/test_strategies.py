from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sorte.config import REPO_ROOT
from sorte.errors import StrategyError
from sorte.runtime.cascade import single_strategy_cascade
from sorte.runtime.data import to_ohlcv
from sorte.runtime.strategy import available_strategies, load_strategy, read_param_specs

STRATEGIES = REPO_ROOT / "strategies"

NAMES = ["momentum", "mean_reversion", "breakout"]


def test_at_least_three_strategies_ship():
    assert set(NAMES) <= set(available_strategies(STRATEGIES))
    assert "cascade" not in available_strategies(STRATEGIES)


@pytest.mark.parametrize("name", NAMES)
def test_params_are_declared_with_type_default_bounds_doc(name):
    specs = read_param_specs(STRATEGIES / f"{name}.py")
    assert {"stop_loss", "take_profit", "min_hold_s"} <= set(specs)
    for spec in specs.values():
        assert spec.doc and spec.min is not None and spec.max is not None
        assert spec.min <= spec.default <= spec.max


def test_params_are_read_without_importing(tmp_path):
    (tmp_path / "boom.py").write_text(
        'raise RuntimeError("imported!")\n'
        'PARAMS = {"n": {"type": "int", "default": 3, "min": 1, "max": 9, "doc": "x"}}\n'
    )
    assert read_param_specs(tmp_path / "boom.py")["n"].default == 3
    with pytest.raises(StrategyError, match="failed to import: RuntimeError"):
        load_strategy("boom", tmp_path)


@pytest.mark.parametrize(
    "source, needle",
    [
        ("X = 1\n", "no top-level PARAMS"),
        ("PARAMS = dict(a=1)\n", "plain literal"),
        ("PARAMS = {'a': {'type': 'int', 'default': 50, 'min': 1, 'max': 9, 'doc': 'x'}}\n", "outside its bounds"),
        ("PARAMS = {'a': {'type': 'complex', 'default': 1, 'doc': 'x'}}\n", "PARAMS\\['a'\\] type"),
        ("PARAMS = {'a': {'type': 'int', 'default': 1}}\n", "doc"),
        ("def broken(:\n", "not valid Python"),
    ],
)
def test_malformed_declarations_are_refused(tmp_path, source, needle):
    (tmp_path / "s.py").write_text(source)
    with pytest.raises(StrategyError, match=needle):
        read_param_specs(tmp_path / "s.py")


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(StrategyError, match="unknown strategy 'nope'.*momentum"):
        load_strategy("nope", STRATEGIES)
    with pytest.raises(StrategyError, match="unknown strategy"):
        load_strategy("../sorte/config", STRATEGIES)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"fast": 0}, "outside its bounds"),
        ({"fast": 2.5}, "must be an int"),
        ({"fast": "ten"}, "must be a int"),
        ({"stop_loss": float("nan")}, "must be finite"),
        ({"nope": 1}, "has no parameter 'nope'"),
        ({"fast": True}, "must be a int"),
    ],
)
def test_parameter_values_are_checked(overrides, needle):
    with pytest.raises(StrategyError, match=needle):
        load_strategy("momentum", STRATEGIES, overrides)


def test_string_values_from_the_command_line_are_coerced():
    s = load_strategy("momentum", STRATEGIES, {"fast": "5", "stop_loss": "0.03"})
    assert s.params.fast == 5 and s.params.stop_loss == 0.03


def test_missing_functions_are_reported(tmp_path):
    shutil.copy(STRATEGIES / "momentum.py", tmp_path / "half.py")
    text = (tmp_path / "half.py").read_text().replace("def decide(", "def _decide(")
    (tmp_path / "half.py").write_text(text)
    with pytest.raises(StrategyError, match="does not define decide"):
        load_strategy("half", tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_decisions_are_scores_in_unit_interval_with_sides(name, goog):
    s = load_strategy(name, STRATEGIES)
    score, side, reason = s.decide(s.features(to_ohlcv(goog)))
    assert score.shape == side.shape == reason.shape == (len(goog),)
    assert np.all((score >= 0) & (score <= 1))
    assert set(np.unique(side)) <= {-1, 0, 1}
    assert (side != 0).sum() > 5, "a strategy that never trades on 9 years of GOOG is broken"
    assert all(reason[side != 0])  # every signal says why
    assert np.all(score[side == 0] == 0)


@pytest.mark.parametrize("name", NAMES)
def test_streaming_window_equals_batch_bit_for_bit(name, eurusd):
    """One code path: the live runtime's trailing-window evaluation of the last bar equals
    the backtester's evaluation over the whole history, bar by bar."""
    cascade = single_strategy_cascade(name, STRATEGIES)
    o = to_ohlcv(eurusd.head(800))
    batch = cascade.evaluate_batch(o)
    for i in range(len(o)):
        d = cascade.evaluate_last("X", i, o.window(i, cascade.window))
        if batch.act[i]:
            assert d is not None, i
            assert d.side == batch.side[i] and d.confidence == batch.confidence[i], i
        else:
            assert d is None, i


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_in_bounds_parameters_give_valid_outputs(data, goog):
    name = data.draw(st.sampled_from(NAMES))
    specs = read_param_specs(STRATEGIES / f"{name}.py")
    values = {}
    for pname, spec in specs.items():
        if spec.type == "int":
            values[pname] = data.draw(st.integers(int(spec.min), int(spec.max)))
        else:
            values[pname] = data.draw(st.floats(spec.min, spec.max, allow_nan=False))
    s = load_strategy(name, STRATEGIES, values)
    score, side, _ = s.decide(s.features(to_ohlcv(goog.head(500))))
    assert np.all((score >= 0) & (score <= 1)) and set(np.unique(side)) <= {-1, 0, 1}
    assert s.lookback() >= 2
