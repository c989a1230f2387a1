from __future__ import annotations

import asyncio
import json

import pytest

from sorte.config import Settings
from sorte.runtime import assembly
from sorte.runtime.clock import SimClock
from sorte.runtime.control import write_control
from sorte.runtime.ledger import Ledger


def session(settings: Settings, **kw):
    return assembly.build_paper_session(settings, **kw)


def run(sess, max_steps=None):
    summary = asyncio.run(sess.runtime.run(max_steps))
    sess.ledger.close()
    return summary


def fill_rows(path):
    ledger = Ledger(path, durable=False)
    rows = [(f.client_order_id, f.seq, f.qty, f.price, f.purpose) for f in ledger.fills()]
    ledger.close()
    return rows


@pytest.fixture()
def demo_settings(settings):
    return settings.model_copy(
        update={
            "runtime": settings.runtime.model_copy(update={"demo_bars": 400}),
            "broker": settings.broker.model_copy(update={"allow_short": True}),
        }
    )


def test_paper_run_writes_ledger_journal_and_summary(demo_settings):
    sess = session(demo_settings)
    summary = run(sess)
    assert summary.steps == 400 and summary.bars == 1600
    assert summary.decisions > 0 and summary.fills > 0
    ledger = Ledger(sess.ledger_path, durable=False)
    fills = ledger.fills()
    assert len(fills) == summary.fills
    assert len({f.client_order_id for f in fills}) == len(fills)
    assert ledger.cursor() == {s: 399 for s in sess.runtime.feed.symbols}
    journal = [json.loads(line) for line in sess.ledger_path.with_suffix(".journal.jsonl").read_text().splitlines()]
    assert [j["client_order_id"] for j in journal] == [f.client_order_id for f in fills]
    assert ledger.account()["cash"] == pytest.approx(sess.runtime.broker.cash)
    ledger.close()


def test_stop_and_resume_equals_an_uninterrupted_run(demo_settings, tmp_path):
    whole = session(demo_settings, ledger_path=tmp_path / "whole.db")
    run(whole)
    first = session(demo_settings, ledger_path=tmp_path / "split.db")
    run(first, max_steps=137)
    second = session(demo_settings, ledger_path=tmp_path / "split.db")
    summary = run(second)
    assert fill_rows(tmp_path / "split.db") == fill_rows(tmp_path / "whole.db")
    assert summary.resumed_from_step == 137


def test_finished_ledger_is_archived_and_a_new_run_starts(demo_settings):
    run(session(demo_settings))
    again = session(demo_settings)
    assert again.runtime.resumed_from is None
    archived = list(again.ledger_path.parent.glob("ledger.db.*"))
    assert archived


def test_ledger_of_another_feed_is_refused(demo_settings):
    run(session(demo_settings), max_steps=5)
    other = demo_settings.model_copy(update={"runtime": demo_settings.runtime.model_copy(update={"demo_seed": 99})})
    with pytest.raises(assembly.ConfigError, match="belongs to another feed"):
        session(other)
    assert session(other, fresh=True).runtime.resumed_from is None


def test_batch_interval_changes_while_running(demo_settings):
    s = demo_settings.model_copy(update={"runtime": demo_settings.runtime.model_copy(update={"batch_interval_s": 2.0})})
    sess = session(s)
    rt = sess.runtime
    assert isinstance(rt.clock, SimClock)
    asyncio.run(rt.run(max_steps=10))
    write_control(s.data_dir / "control.json", interval=7.5)
    asyncio.run(rt.run(max_steps=10))
    assert rt.clock.slept[:10] == [2.0] * 10
    assert rt.clock.slept[10:] == [7.5] * 10
    assert rt.metrics.batch_interval._value.get() == 7.5
    sess.ledger.close()


def test_invalid_control_values_are_refused_and_ignored(demo_settings, tmp_path):
    with pytest.raises(assembly.ConfigError, match="between 0 and"):
        write_control(tmp_path / "c.json", interval=-1)
    (demo_settings.data_dir / "control.json").parent.mkdir(parents=True, exist_ok=True)
    (demo_settings.data_dir / "control.json").write_text('{"batch_interval_s": "soon"}')
    sess = session(demo_settings)
    asyncio.run(sess.runtime.run(max_steps=3))
    assert sess.runtime.control.batch_interval_s == 0.0
    sess.ledger.close()


def test_pause_stops_new_entries_only(demo_settings):
    write_control(demo_settings.data_dir / "control.json", paused=True)
    sess = session(demo_settings)
    skipped = []
    sess.runtime.listener = lambda kind, p: skipped.append(p[1].skipped) if kind == "decision" else None
    summary = run(sess)
    assert summary.decisions > 0 and summary.fills == 0
    assert set(skipped) == {"paused: no new entries"}


def test_prometheus_metrics_are_exported(demo_settings):
    sess = session(demo_settings)
    run(sess)
    text = sess.runtime.metrics.render().decode()
    for name in (
        "sorte_decisions_total",
        "sorte_stage_discards_total",
        "sorte_stage_latency_seconds",
        "sorte_decision_latency_seconds_count",
        "sorte_fills_total",
        "sorte_equity",
        "sorte_gross_exposure_ratio",
    ):
        assert name in text
    assert 'sorte_bars_total{symbol="ALPHA"} 400.0' in text
    discards = sess.runtime.cascade.stats["momentum"]
    assert f'sorte_stage_discards_total{{stage="momentum"}} {float(discards.evaluated - discards.passed)}' in text


def test_bad_data_file_writes_nothing(demo_settings, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-01-01,1,2,0.5,1\n")
    with pytest.raises(assembly.DataError, match="duplicate timestamp"):
        session(demo_settings, files=[bad])
    assert not (demo_settings.data_dir / "paper" / "ledger.db").exists()


def test_replay_speed_paces_by_bar_spacing():
    from sorte.runtime import demo
    from sorte.runtime.feed import ReplayFeed

    clock = SimClock()
    feed = ReplayFeed(demo.generate(2, 5, seed=1), clock, speed=60)  # 1-minute bars at 60x
    batches = []

    async def drain():
        while (batch := await feed.next_batch()) is not None:
            batches.append([(b.symbol, b.seq) for b in batch])

    asyncio.run(drain())
    assert batches[0] == [("ALPHA", 0), ("BRAVO", 0)]
    assert len(batches) == 5 and clock.slept == [1.0] * 4


def test_feed_seek_resumes_after_the_cursor():
    from sorte.runtime import demo
    from sorte.runtime.feed import ReplayFeed

    feed = ReplayFeed(demo.generate(2, 10, seed=1), SimClock())
    feed.seek({"ALPHA": 6, "BRAVO": 6})
    batch = asyncio.run(feed.next_batch())
    assert [(b.symbol, b.seq) for b in batch] == [("ALPHA", 7), ("BRAVO", 7)]


def test_limit_orders_that_expire_are_recorded_and_resume_identically(demo_settings, tmp_path):
    s = demo_settings.model_copy(
        update={
            "broker": demo_settings.broker.model_copy(
                update={"order_type": "limit", "limit_offset_bps": 60, "limit_ttl_bars": 2}
            )
        }
    )
    whole = session(s, ledger_path=tmp_path / "whole.db")
    run(whole)
    ledger = Ledger(tmp_path / "whole.db", durable=False)
    statuses = {o["status"] for o in ledger.orders() if o["kind"] == "limit"}
    assert ledger.open_orders() == [] or all(o.created_seq >= 395 for o in ledger.open_orders())
    ledger.close()
    assert {"expired", "filled"} <= statuses
    first = session(s, ledger_path=tmp_path / "split.db")
    run(first, max_steps=211)
    run(session(s, ledger_path=tmp_path / "split.db"))
    assert fill_rows(tmp_path / "split.db") == fill_rows(tmp_path / "whole.db")


ALWAYS_BUY = '''"""Test strategy: proposes a BUY on every bar."""

import numpy as np

PARAMS = {}


def lookback(p):
    return 2


def features(bars, p):
    return {"close": bars.close}


def decide(f, p):
    n = len(f["close"])
    return np.ones(n), np.ones(n, dtype=int), np.full(n, "always", dtype=object)
'''


def test_symbols_are_analysed_concurrently_while_models_answer(settings, tmp_path):
    """Strategy stages are CPU work; an LLM stage awaits its model. The symbols of one step
    wait for their answers together, up to the backend's concurrency, not one by one."""
    import shutil

    from sorte.config import REPO_ROOT, LLMSettings, ProviderSettings, RoleSettings, RoleTarget
    from sorte.llm.client import LLM
    from sorte.llm.providers.fake import FakeProvider
    from sorte.runtime.cascade import build_cascade, parse_cascade
    from sorte.runtime.feed import ReplayFeed
    from sorte.runtime.metrics import RuntimeMetrics

    strategies = tmp_path / "strategies"
    shutil.copytree(REPO_ROOT / "strategies", strategies)
    (strategies / "always_buy.py").write_text(ALWAYS_BUY)
    llm_settings = LLMSettings(
        providers={"fake": ProviderSettings(kind="fake", concurrency=3)},
        roles={"standard": RoleSettings(chain=[RoleTarget(provider="fake", model="m")])},
    )
    answer = '{"score": 0.9, "side": "BUY", "reason": "fine"}'
    fake = FakeProvider("fake", llm_settings.providers["fake"], [answer], delay_s=0.01)
    in_flight, peaks = 0, []
    original = fake.complete

    async def counting(*args):
        nonlocal in_flight
        in_flight += 1
        peaks.append(in_flight)
        try:
            return await original(*args)
        finally:
            in_flight -= 1

    fake.complete = counting
    stages = [
        {"name": "always", "kind": "strategy", "strategy": "always_buy", "threshold": 0.0},
        {"name": "analysis", "kind": "llm", "role": "standard", "prompt": "technical", "threshold": 0.0},
    ]
    cascade = build_cascade(
        parse_cascade({"min_confidence": 0.0, "stages": stages}), strategies, LLM(llm_settings, None, {"fake": fake})
    )
    s = settings.model_copy(update={"runtime": settings.runtime.model_copy(update={"demo_bars": 60})})
    clock = SimClock()
    feed = ReplayFeed(assembly.demo_frames(s), clock, 0.0)
    runtime = assembly._assemble(s, cascade, feed, clock, None, None, RuntimeMetrics(), 0.0)
    asyncio.run(runtime.run(max_steps=50))
    assert len(feed.symbols) == 4 and len(fake.calls) > 4
    assert max(peaks) == 3  # four symbols waiting, three at a time: the backend's bound
