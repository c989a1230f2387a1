from __future__ import annotations

import numpy as np
import pytest

from sorte.config import REPO_ROOT
from sorte.errors import CascadeError
from sorte.runtime.cascade import (
    LLMStage,
    build_cascade,
    load_cascade,
    parse_cascade,
    read_cascade,
)
from sorte.runtime.data import to_ohlcv

STRATEGIES = REPO_ROOT / "strategies"


def stage(name, kind="strategy", **kw):
    base = {"name": name, "kind": kind, "threshold": kw.pop("threshold", 0.0)}
    if kind == "strategy":
        base["strategy"] = kw.pop("strategy", name)
    if kind == "llm":
        base["role"] = "fast"
    return {**base, **kw}


def test_shipped_cascade_reads_without_import_and_builds():
    definition = read_cascade(STRATEGIES / "cascade.py")
    assert definition.min_confidence == 0.75
    assert [s.name for s in definition.stages][:2] == ["momentum", "technical"]
    assert {s.kind for s in definition.stages} == {"strategy", "technical", "llm"}
    cascade = load_cascade(STRATEGIES)
    assert [s.name for s in cascade.stages] == [s.name for s in definition.enabled_stages]


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"stages": [stage("momentum"), stage("momentum")]}, "duplicate stage names"),
        ({"stages": [stage("t", "technical")]}, "no enabled strategy stage"),
        ({"stages": [stage("momentum", enabled=False)]}, "no stage is enabled"),
        ({"stages": [stage("momentum", threshold=1.5)]}, "threshold"),
        ({"stages": [stage("momentum", kind="magic")]}, "kind"),
        ({"stages": [{"name": "m", "kind": "strategy", "threshold": 0.1}]}, "needs a 'strategy'"),
        ({"stages": [stage("momentum")], "min_confidence": -0.1}, "min_confidence"),
        ({"stages": [stage("momentum", colour="red")]}, "colour"),
        ({"stages": [stage("Bad Name", strategy="momentum")]}, "name"),
        ({"stages": [stage("momentum", weight=0)]}, "weight"),
    ],
)
def test_invalid_definitions_are_refused(raw, needle):
    with pytest.raises(CascadeError, match=needle):
        parse_cascade(raw)


def test_unknown_strategy_or_bad_params_name_the_stage():
    with pytest.raises(CascadeError, match="stage 'x'.*unknown strategy 'nope'"):
        build_cascade(parse_cascade({"stages": [stage("x", strategy="nope")]}), STRATEGIES)
    with pytest.raises(CascadeError, match="stage 'momentum'.*outside its bounds"):
        build_cascade(parse_cascade({"stages": [stage("momentum", params={"fast": 0})]}), STRATEGIES)


@pytest.mark.parametrize(
    "source, needle",
    [
        ("MIN_CONFIDENCE = 0.7\n", "no top-level STAGES"),
        ("STAGES = make()\n", "plain literal"),
        ("STAGES = [\n", "not valid Python"),
    ],
)
def test_malformed_cascade_files(tmp_path, source, needle):
    (tmp_path / "cascade.py").write_text(source)
    with pytest.raises(CascadeError, match=needle):
        read_cascade(tmp_path / "cascade.py")
    with pytest.raises(CascadeError, match="does not exist"):
        read_cascade(tmp_path / "missing.py")


def build(stages, min_confidence=0.0):
    return build_cascade(parse_cascade({"min_confidence": min_confidence, "stages": stages}), STRATEGIES)


def test_discarded_bars_do_not_reach_later_stages(goog):
    cascade = build([stage("momentum", threshold=0.5), stage("technical", "technical", threshold=0.9)])
    signals = cascade.evaluate_batch(to_ohlcv(goog))
    first, second = cascade.stats["momentum"], cascade.stats["technical"]
    assert first.evaluated == len(goog)
    assert second.evaluated == first.passed < len(goog)
    assert second.passed <= second.evaluated
    assert signals.act.sum() == second.passed  # min_confidence 0: every survivor acts


def test_conflicting_sides_discard(goog):
    # breakout and momentum disagree on some bars: those never act
    cascade = build([stage("momentum"), stage("breakout")])
    o = to_ohlcv(goog)
    sig = cascade.evaluate_batch(o)
    mom, brk = sig.outputs
    conflict = (mom.side * brk.side) < 0
    assert not (sig.act & conflict).any()


def test_min_confidence_is_the_weighted_mean_gate(goog):
    lax = build([stage("momentum", weight=1), stage("technical", "technical", weight=3)])
    strict = build([stage("momentum", weight=1), stage("technical", "technical", weight=3)], 0.75)
    o = to_ohlcv(goog)
    a, b = lax.evaluate_batch(o), strict.evaluate_batch(o)
    mom, tech = a.outputs
    expected = (mom.score + 3 * tech.score) / 4
    assert np.allclose(a.confidence, expected)
    assert b.act.sum() < a.act.sum()
    assert np.all(b.confidence[b.act] >= 0.75)


def test_llm_stage_falls_back_to_technical_analysis(goog):
    cascade = build([stage("momentum"), stage("judge", "llm")])
    llm = cascade.stages[1]
    assert isinstance(llm, LLMStage)
    sig = cascade.evaluate_batch(to_ohlcv(goog))
    tech = build([stage("momentum"), stage("t", "technical")]).evaluate_batch(to_ohlcv(goog))
    assert np.array_equal(sig.outputs[1].score, tech.outputs[1].score)
    assert llm.fallbacks == 1
    i = int(np.flatnonzero(sig.act)[0])
    assert "technical-analysis fallback" in sig.outputs[1].reason[i]


def test_decision_carries_strategy_risk_params_and_clamped_hold(goog):
    cascade = build([stage("momentum", params={"stop_loss": 0.03, "take_profit": 0.07, "min_hold_s": 5})])
    o = to_ohlcv(goog)
    sig = cascade.evaluate_batch(o)
    i = int(np.flatnonzero(sig.act)[0])
    d = cascade.decision_at(sig, "GOOG", i, o, i)
    assert (d.stop_loss, d.take_profit, d.hold_s) == (0.03, 0.07, 5)
    assert d.strategy == "momentum" and "crossed" in d.reason
    assert d.ts == o.ts[i] + o.interval_s  # decided at the bar's close
