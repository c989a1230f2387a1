"""The market feed as the service layer reads it from the commander's health file: ages advanced
from the snapshot's time to now, the oldest age, a stale symbol, an old snapshot said to be old."""

from __future__ import annotations

import time

import pytest

import sorte.service as service
from sorte import paths
from sorte.config import Settings
from sorte.market import FeedHealth, write_health
from tests.feed_health import commander_lock, write_feed


def test_no_feed_file_reads_as_none(settings: Settings) -> None:
    assert service.feed(settings) is None
    assert service.overview(settings).feed is None
    assert not (settings.data_dir / "commander").exists(), "reading created the commander's folder"


def test_a_broken_feed_file_reads_as_none(settings: Settings) -> None:
    folder = paths.commander_dir(settings.data_dir)
    folder.mkdir(parents=True)
    paths.feed_health(folder).write_text('{"source": "binance", "mode": "sideways"')
    assert service.feed(settings) is None and service.overview(settings).feed is None


def test_ages_advance_from_the_snapshot_and_a_stale_symbol_shows(settings: Settings) -> None:
    at = time.time()
    write_feed(settings.data_dir, at=at)
    with commander_lock(settings.data_dir):
        view = service.feed(settings, now=at + 40)
        overview = service.overview(settings)
    assert view is not None
    ages = {s.symbol: s.last_bar_age_s for s in view.symbols}
    assert ages == {"BTC/USDT": pytest.approx(70), "ETH/USDT": pytest.approx(670)}
    assert view.oldest_bar_age_s == pytest.approx(670) and view.snapshot_age_s == pytest.approx(40)
    assert [s.symbol for s in view.symbols if s.stale] == ["ETH/USDT"] == view.stale_symbols
    assert (view.current, view.state, view.entries_allowed, view.commander_running) == (True, "stale", False, True)
    assert (view.reconnects, view.backfilled_candles, view.streamed_candles) == (2, 17, 240)
    assert view.lag_s == 1.5 and view.clock_offset_s == -0.25 and view.at == at
    assert view.summary == (
        "binance 1m websocket, 2 symbols, last bar 11 min ago, lag 1.5 s, 2 reconnects, "
        "17 backfilled, 240 streamed candles, stale: ETH/USDT, new entries blocked"
    )
    assert overview.feed is not None and overview.feed.state == "stale"
    assert overview.feed.oldest_bar_age_s is not None and overview.feed.oldest_bar_age_s >= 630


def test_a_live_feed_reads_as_live(settings: Settings) -> None:
    write_feed(settings.data_dir, stale=False)
    with commander_lock(settings.data_dir):
        view = service.feed(settings)
    assert view is not None and view.state == "live" and view.current and view.entries_allowed
    assert "stale" not in view.summary and not view.summary.startswith("as of")


def test_a_closed_market_says_when_it_opens(settings: Settings) -> None:
    write_feed(settings.data_dir, stale=False, source="b3", mode="polling", opens_at=1_797_253_200.0)
    with commander_lock(settings.data_dir):
        view = service.feed(settings)
    assert view is not None and view.state == "live" and not view.market_open and view.opens_at == 1_797_253_200.0
    assert view.summary.endswith(", market closed until 2026-12-14 13:00 UTC")
    write_feed(settings.data_dir, stale=False)
    with commander_lock(settings.data_dir):
        view = service.feed(settings)
    assert view is not None and view.market_open and view.opens_at is None and "closed" not in view.summary


def test_the_snapshot_of_a_stopped_commander_says_so(settings: Settings) -> None:
    at = time.time() - 5
    write_feed(settings.data_dir, at=at)
    view = service.feed(settings)  # nobody holds the commander's lock
    assert view is not None and not view.current and view.state == "old" and not view.commander_running
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    assert view.summary.startswith(f"as of {stamp}, commander not running: binance 1m websocket, 2 symbols")


def test_a_snapshot_older_than_three_intervals_is_old_though_the_commander_runs(settings: Settings) -> None:
    at = time.time()
    write_feed(settings.data_dir, at=at, stale=False)
    with commander_lock(settings.data_dir):
        fresh = service.feed(settings, now=at + 179)  # 1m bars: three intervals are 180 s
        old = service.feed(settings, now=at + 600)
    assert fresh is not None and fresh.current and fresh.state == "live"
    assert old is not None and not old.current and old.state == "old"
    assert ", not updated for 10 min: binance 1m websocket" in old.summary


def test_the_replay_feed_and_a_snapshot_without_its_time(settings: Settings) -> None:
    health = write_feed(settings.data_dir, source="replay", mode="replay", stale=False)
    with commander_lock(settings.data_dir):
        view = service.feed(settings)
        assert view is not None and view.summary.startswith("replay 1m, 2 symbols, last bar ")
        folder = paths.commander_dir(settings.data_dir)
        write_health(paths.feed_health(folder), FeedHealth(**{**health.model_dump(), "at": None}))
        undated = service.feed(settings)
    assert undated is not None and undated.at == pytest.approx(time.time(), abs=30)  # the file's time
    assert undated.current


def test_a_replay_as_the_commander_writes_it_shows_its_bar_not_an_age(settings: Settings) -> None:
    from commander.source import replay_source

    source = replay_source(
        settings.model_copy(update={"runtime": settings.runtime.model_copy(update={"demo_bars": 60})})
    )
    source.seek({s: 41 for s in source.symbols})
    folder = paths.commander_dir(settings.data_dir)
    folder.mkdir(parents=True)
    write_health(paths.feed_health(folder), source.health())
    with commander_lock(settings.data_dir):
        view = service.feed(settings)
    assert view is not None and view.newest_seq == 41 and view.oldest_bar_age_s is None
    assert view.summary.startswith(f"replay {source.health().timeframe}, 4 symbols, at bar 41"), view.summary
