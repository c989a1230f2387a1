from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardian import Tolerances, demo_datasets, paired_bootstrap, run_benchmark_gate, run_benchmark_gate_in
from guardian.gates import subprocess_runner
from sorte.config import REPO_ROOT, BrokerSettings, RiskSettings

CASCADE = """MIN_CONFIDENCE = 0.0

STAGES = [
    {"name": "momentum", "kind": "strategy", "strategy": "momentum", "threshold": 0.0, "weight": 1.0, "enabled": True},
]
"""
BROKER = BrokerSettings(fee_bps=0, slippage_bps=0, allow_short=True)
RISK = RiskSettings(
    position_fraction=1, max_position_fraction=1, max_loss_per_trade=1, max_drawdown=1, max_gross_exposure=2
)


def _tree(root: Path, invert: bool = False, simple: bool = True) -> Path:
    shutil.copytree(REPO_ROOT / "strategies", root / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    if simple:
        (root / "strategies" / "cascade.py").write_text(CASCADE)
    if invert:
        path = root / "strategies" / "momentum.py"
        old = "side = np.where(up, 1, np.where(down, -1, 0))"
        src = path.read_text()
        assert old in src
        path.write_text(src.replace(old, "side = np.where(up, -1, np.where(down, 1, 0))"))
    return root


@pytest.fixture()
def goog_data(goog: pd.DataFrame) -> dict:
    """backtesting.py's real GOOG series (tests/conftest.py)."""
    return {"goog": {"GOOG": goog}}


def test_identical_is_same_and_passes(tmp_path: Path) -> None:
    base = _tree(tmp_path / "base", simple=False)
    cand = _tree(tmp_path / "cand", simple=False)
    result = run_benchmark_gate(cand, base, demo_datasets(seeds=(3, 5), n_bars=400))
    assert result.status == "pass", result.summary
    assert {m.metric: m.outcome for m in result.metrics} == {
        "mean bar return": "same",
        "return %": "same",
        "sharpe": "same",
        "max drawdown %": "same",
        "trades": "same",
        "decision latency s": "same",
    }


def test_inverted_side_is_worse_and_fails(tmp_path: Path, goog_data: dict) -> None:
    base = _tree(tmp_path / "base")
    cand = _tree(tmp_path / "cand", invert=True)
    result = run_benchmark_gate(cand, base, goog_data, broker=BROKER, risk=RISK)
    assert result.status == "fail", result.summary
    outcomes = {m.metric: m.outcome for m in result.metrics}
    assert outcomes["mean bar return"] == "worse"
    assert outcomes["return %"] == "worse"
    assert outcomes["max drawdown %"] == "worse"
    # the other way round the candidate is better, but the baseline's drawdown floor is not the candidate's
    reverse = run_benchmark_gate(base, cand, goog_data, broker=BROKER, risk=RISK, tolerances=Tolerances())
    assert {m.metric: m.outcome for m in reverse.metrics}["return %"] == "better"


def test_drawdown_floor_fails_whatever_else(tmp_path: Path, goog_data: dict) -> None:
    base = _tree(tmp_path / "base")
    result = run_benchmark_gate(
        base, base, goog_data, broker=BROKER, risk=RISK, tolerances=Tolerances(drawdown_floor_pct=5.0)
    )
    assert result.status == "fail"
    assert "floor" in next(m.note for m in result.metrics if m.metric == "max drawdown %")


def test_tiny_data_is_inconclusive(tmp_path: Path, goog_data: dict) -> None:
    base = _tree(tmp_path / "base")
    cand = _tree(tmp_path / "cand", invert=True)
    tiny = {"tiny": {"GOOG": goog_data["goog"]["GOOG"].iloc[:80]}}
    result = run_benchmark_gate(cand, base, tiny, broker=BROKER, risk=RISK)
    assert result.status == "inconclusive", (result.summary, result.metrics)
    assert "too little data" in result.summary


def test_broken_candidate_is_error(tmp_path: Path) -> None:
    base = _tree(tmp_path / "base")
    cand = _tree(tmp_path / "cand")
    (cand / "strategies" / "momentum.py").write_text("def oops(:\n")
    result = run_benchmark_gate(cand, base, demo_datasets(seeds=(3,), n_bars=200))
    assert result.status == "error"


def test_through_a_runner(tmp_path: Path) -> None:
    base = _tree(tmp_path / "base")
    cand = _tree(tmp_path / "cand")
    result = run_benchmark_gate_in(subprocess_runner, cand, base, limits={"timeout_s": 240})
    assert result.status == "pass", result.summary


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 500)
    assert paired_bootstrap(a, a).outcome() == "same"
    better = paired_bootstrap(a + 0.5, a, seed=3)
    assert better.outcome() == "better" and better == paired_bootstrap(a + 0.5, a, seed=3)
    assert paired_bootstrap(a - 0.5, a).outcome() == "worse"
    noisy = paired_bootstrap(rng.normal(0, 1, 500), a)
    assert noisy.outcome() == "inconclusive"
    assert paired_bootstrap(a[:10] + 1, a[:10]).outcome(min_samples=30) == "inconclusive"
