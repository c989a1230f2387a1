"""The interpreter on the development part of the evaluation set (the part it is tuned on; the
held-back part is only measured, by bench/interpret.py). Tier 1 alone: no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from sorte.config import REPO_ROOT
from sorte.interpret import Interpreter, build_catalogue
from sorte.interpret.evaluate import load_set, run

HERE = Path(__file__).parent
#: The shipped values the sets' relative changes and "already" cases are computed from.
ASSUMED = {
    ("momentum", "fast"): 10,
    ("momentum", "slow"): 20,
    ("momentum", "strength_scale"): 1.0,
    ("momentum", "stop_loss"): 0.02,
    ("momentum", "take_profit"): 0.04,
    ("momentum", "min_hold_s"): 30.0,
    ("mean_reversion", "rsi_period"): 14,
    ("mean_reversion", "oversold"): 30.0,
    ("mean_reversion", "overbought"): 70.0,
    ("mean_reversion", "stop_loss"): 0.03,
    ("mean_reversion", "take_profit"): 0.03,
    ("mean_reversion", "min_hold_s"): 20.0,
    ("breakout", "period"): 20,
    ("breakout", "width"): 2.0,
    ("breakout", "volume_boost"): 0.1,
    ("breakout", "stop_loss"): 0.025,
    ("breakout", "take_profit"): 0.05,
    ("breakout", "min_hold_s"): 45.0,
}
STAGES = [
    ("momentum", 0.5, 1.0, True),
    ("technical", 0.55, 1.0, True),
    ("sentiment", 0.75, 1.0, False),
    ("analysis", 0.6, 1.0, False),
    ("risk", 0.5, 1.0, False),
    ("validation", 0.5, 1.0, False),
    ("final", 0.0, 2.0, False),
]


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue(REPO_ROOT)


def test_the_shipped_values_are_the_ones_the_sets_assume(catalogue) -> None:
    for (strategy, name), value in ASSUMED.items():
        assert catalogue.param(strategy, name).value == value, (strategy, name)
    assert [(s.name, s.threshold, s.weight, s.enabled) for s in catalogue.stages] == STAGES
    assert catalogue.min_confidence == 0.75


@pytest.mark.parametrize("name", ["requests_dev.yaml", "requests_dev2.yaml", "requests_holdout.yaml"])
def test_each_set_is_well_formed_and_half_portuguese(name: str) -> None:
    items = load_set(HERE / name)
    assert len(items) >= 150
    assert len({i["id"] for i in items}) == len(items)
    assert abs(sum(i["lang"] == "pt" for i in items) - len(items) / 2) <= len(items) * 0.05
    for item in items:
        assert bool(item.get("ops")) == (item["action"] == "edit"), item["id"]


@pytest.mark.parametrize("name", ["requests_dev.yaml", "requests_dev2.yaml"])
def test_the_development_part_reads_as_expected(catalogue, name: str) -> None:
    report = run(load_set(HERE / name), Interpreter(catalogue).read)
    summary = report.summary()
    misses = [(r.item["id"], r.item["text"], r.reading.intent, r.reading.action, r.ops) for r in report.misses()]
    assert summary["exact_plan"] >= 0.97, misses
    assert summary["intent_rest"] >= 0.95, misses
    assert summary["wrong_edit"] == 0, [m for m, r in zip(misses, report.misses(), strict=True) if r.wrong_edit]
    assert summary["language"] >= 0.95
