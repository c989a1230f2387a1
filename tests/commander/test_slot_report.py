"""The active slot's report to the front-ends: the snapshot file and the alerts only it can see."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from commander.alerts import read_alerts
from commander.slot_report import STORM_FALLBACKS, SlotReporter, snapshot_path
from sorte.runtime.metrics import RuntimeMetrics
from sorte.runtime.values import Bar


class FakeRuntime(SimpleNamespace):
    """What the reporter reads from a runtime: the risk vetoes, the equity, the metrics, the
    cascade's figures."""

    def __init__(self) -> None:
        super().__init__(executor=SimpleNamespace(risk=SimpleNamespace(vetoes={})), metrics=RuntimeMetrics())
        self.broker = SimpleNamespace(equity=lambda: 10_000.0)
        self.stage_figures = lambda: []
        self.llm_cache_hit_rate = lambda: None


def bar(symbol: str, seq: int, close: float) -> Bar:
    return Bar(symbol, seq, 60.0 * seq, close, close, close, close, 1.0)


def test_snapshot_holds_the_last_prices_and_the_metrics(tmp_path: Path) -> None:
    runtime, reporter = FakeRuntime(), SlotReporter(tmp_path, "blue")
    runtime.metrics.stage_passes.labels("momentum").inc(3)
    reporter.reset(runtime)
    reporter.after_step(runtime, [bar("ALPHA", 0, 10.0), bar("BRAVO", 0, 20.0)], 0, 1, "7")
    data = json.loads(snapshot_path(tmp_path, "blue").read_text())
    assert data["last_close"] == {"ALPHA": 10.0, "BRAVO": 20.0} and data["deployment"] == "7" and data["tick"] == 1
    assert 'sorte_stage_passes_total{stage="momentum"} 3.0' in data["metrics"]
    assert not list(tmp_path.glob("*.tmp")), "written through a temporary file, renamed whole"


def test_a_risk_veto_is_an_alert_once_per_new_veto(tmp_path: Path) -> None:
    runtime, reporter = FakeRuntime(), SlotReporter(tmp_path, "blue")
    runtime.executor.risk.vetoes["max_drawdown"] = 4  # vetoes before this role are not news
    reporter.reset(runtime)
    reporter.after_step(runtime, [], 0, 1, "1")
    assert read_alerts(tmp_path) == []
    runtime.executor.risk.vetoes["max_drawdown"] = 5
    reporter.after_step(runtime, [], 0, 2, "1")
    [alert] = read_alerts(tmp_path)
    assert alert["kind"] == "risk_limit" and alert["rule"] == "max_drawdown" and alert["tick"] == 2


def test_llm_fallbacks_become_a_storm_alert_past_the_threshold(tmp_path: Path) -> None:
    runtime, reporter = FakeRuntime(), SlotReporter(tmp_path, "green")
    reporter.reset(runtime)
    for tick in range(STORM_FALLBACKS - 1):
        reporter.after_step(runtime, [], 1, tick, "1")
    assert read_alerts(tmp_path) == []
    reporter.after_step(runtime, [], 1, STORM_FALLBACKS, "1")
    [alert] = read_alerts(tmp_path)
    assert alert["kind"] == "llm_fallback_storm" and alert["slot"] == "green"
    assert f"{STORM_FALLBACKS} LLM stage answers" in alert["message"]
