"""The service layer's reading on an empty data directory, on a hand-written ledger, and on the
book a real commander run leaves (slot processes, shared ledger, the active slot's snapshot)."""

from __future__ import annotations

import asyncio
import json

import pytest

import sorte.service as service
from commander.engine import Commander
from commander.status import commander_dir
from sorte.config import Settings
from sorte.errors import SorteError
from sorte.runtime.ledger import Ledger
from sorte.service.reading import _quantile_ms, stage_stats
from tests.commander.commander_env import commander_settings
from tests.project_repo import copy_project


def test_an_empty_data_dir_reads_as_nothing_yet(settings: Settings) -> None:
    o = service.overview(settings)
    assert (o.health, o.commander_running, o.active, o.profit) == ("stopped", False, None, None)
    assert o.positions == [] and o.stages == [] and o.llm_cache_hit_rate is None
    assert service.trades(settings) == [] and service.equity_curve(settings) == []
    assert service.deployments(settings) == [] and service.runs(settings) == [] and service.logs(settings) == []
    health = service.health(settings)
    assert not health.ready and health.checks == {"data_dir": "ok", "commander": "not running"}
    with pytest.raises(service.NotFound, match="no deployment 3"):
        service.deployment(settings, 3)
    with pytest.raises(service.NotFound, match="no run 'nope'"):
        service.diff(settings, "nope")
    with pytest.raises(SorteError, match="query is empty"):
        service.lessons(settings, query="  ")
    assert not (settings.data_dir / "commander").exists(), "reading created the commander's stores"


def test_profit_and_thinned_equity_from_a_ledger(settings: Settings) -> None:
    ledger = Ledger(settings.data_dir / "paper" / "ledger.db")
    for step, equity in enumerate([10_000, 10_500, 9_450, 9_800, 10_200]):
        ledger.commit_step(step, 1000.0 + step, [], [], {}, {"cash": equity, "realized_pnl": 7.0}, equity, {}, [])
    ledger.close()
    p = service.profit(settings)
    assert p is not None and p.equity == 10_200 and p.steps == 5 and p.realised_pnl == 7.0
    assert p.return_pct == pytest.approx(2.0) and p.max_drawdown == pytest.approx(1 - 9_450 / 10_500)
    assert p.closed_trades == 0 and p.win_rate is None
    thin = service.equity_curve(settings, points=2)
    assert [x.step for x in thin] == [0, 3, 4], "every third step, and the last one always"


def test_histogram_quantile_takes_the_bucket_bound() -> None:
    buckets = [(0.001, 50.0), (0.01, 98.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert _quantile_ms(buckets, 0.5) == pytest.approx(1.0)
    assert _quantile_ms(buckets, 0.99) == pytest.approx(100.0)
    assert _quantile_ms([(float("inf"), 0.0)], 0.5) is None


def test_logs_are_the_tail_of_the_log_file(settings: Settings) -> None:
    path = settings.data_dir / "logs" / "sorte.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"event": f"e{i}"}) + "\n" for i in range(50)))
    assert [json.loads(x)["event"] for x in service.logs(settings, lines=3)] == ["e47", "e48", "e49"]


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("traded")
    settings = commander_settings(copy_project(base / "repo"), base / "var")
    asyncio.run(Commander(settings).run(max_ticks=400))
    return settings


@pytest.mark.slow
def test_the_book_of_a_real_commander_run(traded: Settings) -> None:
    ledger = Ledger.read_only(commander_dir(traded.data_dir) / "ledger.db")
    try:
        fills, positions, curve = ledger.fills(), ledger.positions(), ledger.equity_curve()
    finally:
        ledger.close()
    assert fills, "the demo market should have traded in 400 steps"
    trades = service.trades(traded, limit=1000)
    assert [t.client_order_id for t in trades] == [f.client_order_id for f in reversed(fills)]
    assert len(service.trades(traded, limit=2)) == 2
    profit = service.profit(traded)
    assert profit.steps == len(curve) == 400 and profit.equity == pytest.approx(curve[-1][2])
    assert profit.closed_trades == sum(1 for f in fills if f.purpose != "open")
    views = service.positions(traded)
    assert {p.symbol for p in views} == set(positions)
    for p in views:  # last prices come from the active slot's snapshot
        assert p.last_price is not None and p.unrealised_pnl == pytest.approx(
            (p.last_price - p.entry_price) * (p.qty if p.side == "long" else -p.qty)
        )


@pytest.mark.slow
def test_overview_deployments_and_stage_figures_of_a_real_run(traded: Settings) -> None:
    o = service.overview(traded)
    assert o.health == "stopped" and not o.commander_running  # the run ended
    assert o.active is not None and o.active.state == "active" and o.active_slot == o.active.slot
    assert o.lease.holder == o.active.slot and o.lease.epoch >= 1
    stages = stage_stats(traded)
    assert stages and stages == o.stages
    first = stages[0]
    assert first.passes + first.discards > 0 and 0 <= first.pass_rate <= 1
    assert first.latency_p50_ms is not None and first.latency_p50_ms <= first.latency_p99_ms
    [view] = service.deployments(traded)
    assert view.deployment.id == o.active.id and view.events[0].to_state in ("requested", "starting", "active")
    assert not view.can_roll_back_to, "the active deployment is not a rollback target"
    assert service.deployment(traded, o.active.id).deployment == view.deployment
