"""The commander on B3 (``runtime.feed=b3``): one collector polling the local fake brapi over
its real HTTP client feeds real slot processes, on the fake's clock, through a session close,
a weekend, Carnival and Ash Wednesday's late open: every session candle once and in order with
contiguous sequence numbers, no stale alarm while the market is closed, the feed health saying
it is closed and when it opens, and new entries taken on the first candles after the break."""

from __future__ import annotations

import asyncio
import threading
import time as wall
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path

import pytest
from fake_brapi import FakeBrapi, local_ms

from commander.alerts import read_alerts
from commander.engine import Commander
from commander.observer import CommanderObserver
from commander.protocol import Done, Fault
from commander.runs import SlotRun
from commander.source import LiveSource
from commander.status import commander_dir
from sorte import paths
from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.market import Collector, FeedHealth, read_health
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import Bar
from tests.market.b3_env import FRI, SAT, THU, TICKERS, TUE, WED, BrapiTime, b3_settings, fake_b3
from tests.project_repo import copy_project

pytestmark = pytest.mark.slow

HOLD_S = 1.2  # wall seconds at each moment: a few polls, and a health snapshot (written once a second)
# The fake's clock, moment by moment: five minutes after each candle closes, then the closed days.
SESSION = [(THU, time(h, 5)) for h in range(13, 19)] + [(FRI, time(h, 5)) for h in range(11, 19)]
CLOSED = [(SAT, time(12)), (TUE, time(17))]  # the weekend; Carnival Tuesday
AFTER = [(WED, time(14, 5)), (WED, time(15, 5)), (WED, time(16, 5))]  # Ash Wednesday opens at 13:00


class Timeline:
    """Moves the fake brapi's clock through the moments once the commander runs, reading the
    feed health the commander wrote at each closed moment."""

    def __init__(self, fake: FakeBrapi, health_file: Path) -> None:
        self.fake, self.health_file = fake, health_file
        self.go, self.done = threading.Event(), threading.Event()
        self.closed_health: list[FeedHealth | None] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.go.wait()
        for day, at in SESSION + CLOSED + AFTER:
            self.fake.set_time(day, at)
            wall.sleep(HOLD_S)
            if (day, at) in CLOSED:
                wall.sleep(HOLD_S)  # a snapshot written after the move, surely
                self.closed_health.append(read_health(self.health_file))
        wall.sleep(HOLD_S)
        self.done.set()

    def __enter__(self) -> Timeline:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.thread.join(60)


class Sent(CommanderObserver):
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.steps: list[tuple[list[Bar], bool]] = []

    async def before_between_steps(self) -> None:
        self.timeline.go.set()

    def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
        if run.role == "active":
            assert isinstance(reply, Done), reply
            self.steps.append((bars, entries))


@pytest.fixture()
def fake() -> Iterator[FakeBrapi]:
    brapi = fake_b3()
    yield brapi
    brapi.stop()


def test_the_commander_trades_b3_sessions_across_a_weekend_and_carnival(tmp_path, fake) -> None:
    repo = copy_project(tmp_path / "repo")
    base = Settings(data_dir=tmp_path / "var", strategies_dir=repo / "strategies", git={"repo_root": str(repo)})
    settings = b3_settings(base, fake, prefetch_bars=40)
    folder = commander_dir(settings.data_dir)
    started = wall.monotonic()
    with Timeline(fake, paths.feed_health(folder)) as timeline:
        sent = Sent(timeline)
        collector = Collector(settings, clock=BrapiTime(fake))
        commander = Commander(settings, source=LiveSource(collector), observer=sent)
        asyncio.run(commander.run(until=lambda c: timeline.done.is_set() or wall.monotonic() - started > 180))
    assert timeline.done.is_set(), "the commander did not get through the week in time"

    # Every session candle from Thursday 12:00 on, once and in order, Friday's last followed by
    # Ash Wednesday's first: seq numbers count session candles only.
    calendar = collector.calendar
    for symbol in TICKERS:
        opens = [b.ts * 1000 for bars, _ in sent.steps for b in bars if b.symbol == symbol]
        seqs = [b.seq for bars, _ in sent.steps for b in bars if b.symbol == symbol]
        thursday = [local_ms(THU, time(h)) for h in range(12, 18)]  # 12:00 was in progress at the start
        friday = [local_ms(FRI, time(h)) for h in range(10, 18)]
        wednesday = [local_ms(WED, time(h)) for h in (13, 14, 15)]
        assert opens == thursday + friday + wednesday, symbol
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[0] == calendar.seq(thursday[0])
    assert commander.report().feed_gaps == 0
    # Nothing stale over five closed days; the first candles after the break take entries.
    kinds = [a["kind"] for a in read_alerts(folder, limit=100)]
    assert "feed_stale" not in kinds, kinds
    assert all(entries for _, entries in sent.steps[-3:])
    # While closed, the health the front-ends read says so, and when Ash Wednesday opens.
    assert len(timeline.closed_health) == 2
    for health in timeline.closed_health:
        assert health is not None and health.source == "b3" and not health.market_open
        assert health.opens_at == local_ms(WED, time(13)) / 1000 and health.stale_symbols == []
    last = read_health(paths.feed_health(folder))
    assert last is not None and last.market_open and last.opens_at is None

    # A closure added for a day already traded would renumber the bars: resuming is refused,
    # nothing started. One added for a day to come changes nothing traded: resuming is fine.
    ledger = Ledger(paths.commander_ledger(folder), durable=False)
    cursor, last_ts = ledger.cursor(), ledger.last_step_ts()
    ledger.close()
    assert last_ts == local_ms(WED, time(15)) / 1000
    past = b3_settings(base, fake, prefetch_bars=40, b3={"holidays": [FRI]})
    refused = Commander(past, source=LiveSource(Collector(past, clock=BrapiTime(fake))))
    with pytest.raises(ConfigError, match="a closure or an open day was added or removed for a day already traded"):
        asyncio.run(refused.run(max_ticks=1))
    assert refused.slots == {}
    coming = b3_settings(base, fake, prefetch_bars=40, b3={"holidays": [date(2026, 2, 20)]})
    LiveSource(Collector(coming, clock=BrapiTime(fake))).check_resume(cursor, last_ts)
