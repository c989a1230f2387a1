"""The collector on B3 (``runtime.feed=b3``) through brapi, against the local fake brapi: the
prefetch, polling during sessions only, sequence numbers contiguous across the night, a weekend
and Carnival, restarts from the cache, the backfill after an outage and stale data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import time

import pytest
from b3_env import FRI, MON, SAT, THU, TICKERS, TUE, WED, b3_collector, b3_settings, fake_b3, opens_of, seqs_of
from fake_brapi import FakeBrapi, local_ms
from market_env import drain, running, stop, take, until

from sorte.market import MarketAlert
from sorte.market.feed import MarketFeed
from sorte.runtime.values import Bar


@pytest.fixture()
def fake() -> Iterator[FakeBrapi]:
    brapi = fake_b3()
    yield brapi
    brapi.stop()


def test_prefetch_fills_the_cache_with_the_lookback(settings, fake):
    collector = b3_collector(b3_settings(settings, fake, prefetch_bars=20), fake)

    async def body():
        await collector.start()
        try:
            return collector.health(), collector.history("PETR4", 50), collector.calendar
        finally:
            await collector.close()

    health, window, calendar = asyncio.run(body())
    # Thursday 12:30: the 12:00 candle is in progress; the 20 closed session candles before it
    # reach back to Monday's 16:00 (nights skipped).
    expected = fake.closed_candles("PETR4", THU.replace(day=9), THU)[-20:]
    assert [int(t * 1000) for t in window.ts] == expected
    assert list(window.close) == [fake.values("PETR4", t)[3] for t in expected]
    assert [s.last_seq for s in health.symbols] == [calendar.seq(expected[-1])] * 2
    assert health.source == "b3" and health.timeframe == "1h" and health.mode == "starting"
    assert (settings.data_dir / "market" / "b3.db").exists()
    candles = fake.candle_requests()
    # One request a ticker, the smallest range reaching Monday (4 calendar days): 5d.
    assert sorted((r.path, r.params["range"], r.params["interval"]) for r in candles) == [
        ("/api/quote/PETR4", "5d", "1h"),
        ("/api/quote/VALE3", "5d", "1h"),
    ]
    assert all(r.authorized for r in fake.requests)


def test_polling_emits_each_candle_once_in_order_across_the_night(settings, fake):
    collector = b3_collector(b3_settings(settings, fake), fake)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            fake.set_time(THU, time(17, 10))  # 12:00 ... 16:00 closed
            bars = await take(queue, 10)
            fake.set_time(FRI, time(10, 30))  # Thursday's 17:00 candle closed at 18:00; 10:00 is in progress
            bars += await take(queue, 2)
            await asyncio.sleep(0.5)
            return bars, drain(queue), collector.health()
        finally:
            await stop(collector, task)

    bars, extra, health = asyncio.run(body())
    assert extra == []  # Friday's 10:00 candle is in progress: never emitted
    for symbol in TICKERS:
        opens = [local_ms(THU, time(h)) for h in range(12, 18)]
        assert opens_of(bars, symbol) == opens
        seqs = seqs_of(bars, symbol)
        assert seqs == list(range(seqs[0], seqs[0] + 6))
        final = [[b.open, b.high, b.low, b.close, b.volume] for b in bars if b.symbol == symbol]
        assert final == [fake.values(symbol, t) for t in opens]  # the final values, not partial ones
    assert health.mode == "polling" and health.gaps == 0 and health.backfilled_candles == 12


def test_nothing_is_asked_or_alerted_while_the_market_is_closed(settings, fake):
    alerts: list[MarketAlert] = []
    collector = b3_collector(b3_settings(settings, fake, stale_intervals=2), fake, alerts)

    async def body():
        queue = collector.subscribe()
        fake.set_time(FRI, time(18, 5))
        task = await running(collector)
        try:
            before = len(fake.requests)
            for day, at in ((SAT, time(12)), (MON, time(11)), (TUE, time(17)), (WED, time(13, 55))):
                fake.set_time(day, at)
                await asyncio.sleep(0.5)  # a couple of polls and watchdog rounds
                health = collector.health()
                assert collector.entries_allowed() and health.stale_symbols == []
                # The page and /status say whether the market is closed and when it opens (Ash Wednesday, 13:00).
                opens = None if day == WED else local_ms(WED, time(13)) / 1000
                assert (health.market_open, health.opens_at) == (day == WED, opens)
            closed = (len(fake.requests) - before, drain(queue), list(alerts))
            fake.set_time(WED, time(14, 5))  # Ash Wednesday's first candle (13:00) closed
            bars = await take(queue, 2)
            assert collector.health().market_open and collector.health().opens_at is None
            return closed, bars, collector.states["PETR4"].last_seq, collector.calendar
        finally:
            await stop(collector, task)

    (requests, bars_closed, alerts_closed), bars, last_seq, calendar = asyncio.run(body())
    assert requests == 0 and bars_closed == [] and alerts_closed == []
    friday_last = calendar.seq(local_ms(FRI, time(17)))
    assert {b.symbol: b.seq for b in bars} == {s: friday_last + 1 for s in TICKERS}  # no gap over 5 days
    assert opens_of(bars, "VALE3") == [local_ms(WED, time(13))]
    assert last_seq == friday_last + 1 and alerts == []


def test_a_session_candle_that_does_not_come_is_stale_then_backfilled(settings, fake):
    alerts: list[MarketAlert] = []
    collector = b3_collector(b3_settings(settings, fake, stale_intervals=3), fake, alerts)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            fake.stalled_at_ms = local_ms(THU, time(13))  # brapi stops delivering from 13:00 on
            fake.set_time(THU, time(13, 5))
            first = await take(queue, 2)  # 12:00
            fake.set_time(THU, time(14, 30))  # 13:00 closed but missing: 1.5 candles behind, not stale
            await asyncio.sleep(0.5)
            early = list(alerts)
            fake.set_time(THU, time(16, 30))  # 3.5 candles behind: stale
            await until(lambda: len(alerts) == 2, what="the stale alerts")
            down = (drain(queue), collector.entries_allowed("PETR4"), collector.health())
            fake.stalled_at_ms = None
            await until(lambda: len(alerts) == 4, what="the recovery alerts")
            return first, early, down, await take(queue, 6)
        finally:
            await stop(collector, task)

    first, early, (during, entries, health), bars = asyncio.run(body())
    assert opens_of(first, "PETR4") == [local_ms(THU, time(12))] and early == []
    assert during == [] and not entries and health.stale_symbols == TICKERS
    assert sorted((a.kind, a.symbol) for a in alerts[:2]) == [("stale", s) for s in TICKERS]
    assert sorted((a.kind, a.symbol) for a in alerts[2:]) == [("recovered", s) for s in TICKERS]
    assert "no new 1h candle of" in alerts[0].message and "on b3" in alerts[0].message
    assert opens_of(bars, "PETR4") == [local_ms(THU, time(h)) for h in (13, 14, 15)]


def test_a_restart_resumes_from_the_cache_over_a_long_weekend(settings, fake):
    s = b3_settings(settings, fake, prefetch_bars=20)

    async def start_and_close(cursor=None, bars=0):
        collector = b3_collector(s, fake)
        queue = collector.subscribe()
        await collector.start(cursor)
        task = asyncio.create_task(collector.run()) if bars else None
        try:
            got = await take(queue, bars) if bars else []
        finally:
            if task is not None:
                await stop(collector, task)
            else:
                await collector.close()
        return collector, got

    fake.set_time(FRI, time(12, 30))
    first, _ = asyncio.run(start_and_close())
    friday_11 = first.states["PETR4"].last_seq
    before = len(fake.candle_requests())
    fake.set_time(WED, time(15, 30))  # the weekend and Carnival later: Friday 12:00..17:00 and Wednesday 13:00, 14:00
    again, bars = asyncio.run(start_and_close(cursor={t: friday_11 for t in TICKERS}, bars=16))
    fetched = fake.candle_requests()[before:]
    # Only from Friday 12:00, the first candle the cache lacks: six calendar days back, a 1mo range
    # (5d would end on Saturday and miss Friday's afternoon).
    assert sorted((r.path, r.params["range"]) for r in fetched) == [
        ("/api/quote/PETR4", "1mo"),
        ("/api/quote/VALE3", "1mo"),
    ]
    for symbol in TICKERS:
        assert opens_of(bars, symbol) == [local_ms(FRI, time(h)) for h in range(12, 18)] + [
            local_ms(WED, time(13)),
            local_ms(WED, time(14)),
        ]
        assert seqs_of(bars, symbol) == list(range(friday_11 + 1, friday_11 + 9))
    assert again.health().gaps == 0
    before = len(fake.candle_requests())
    asyncio.run(start_and_close())
    assert len(fake.candle_requests()) == before  # the cache holds everything closed: nothing fetched


def test_brapi_down_then_back_backfills_in_order(settings, fake):
    collector = b3_collector(b3_settings(settings, fake, stale_intervals=10), fake)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            fake.down = True
            fake.set_time(THU, time(15, 30))  # 12:00, 13:00 and 14:00 close while brapi answers 503
            await until(lambda: collector.poll_failures >= 2, what="failed polls")
            during = drain(queue)
            fake.down = False
            bars = await take(queue, 6)
            await asyncio.sleep(0.3)
            return during, bars, drain(queue), collector.health()
        finally:
            await stop(collector, task)

    during, bars, extra, health = asyncio.run(body())
    assert during == [] and extra == []
    for symbol in TICKERS:
        assert opens_of(bars, symbol) == [local_ms(THU, time(h)) for h in (12, 13, 14)]
    assert health.poll_failures >= 2 and health.gaps == 0 and health.stale_symbols == []


def test_the_market_feed_batches_b3_bars_across_the_weekend(settings, fake):
    collector = b3_collector(b3_settings(settings, fake), fake)
    feed = MarketFeed(collector, wait_s=0.2)

    async def body():
        fake.set_time(FRI, time(16, 30))
        batches = []
        try:
            await feed.open()
            fake.set_time(WED, time(14, 30))
            while sum(len(b) for b in batches) < 6:
                batch = await feed.next_batch()
                if batch:
                    batches.append(batch)
            return batches, feed.health()
        finally:
            await feed.close()

    batches, health = asyncio.run(body())
    assert [[b.symbol for b in batch] for batch in batches] == [TICKERS] * 3
    assert [batch[0].ts * 1000 for batch in batches] == [
        local_ms(FRI, time(16)),
        local_ms(FRI, time(17)),
        local_ms(WED, time(13)),
    ]
    seqs = [batch[0].seq for batch in batches]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert health.gaps == 0


def test_recent_counts_market_time_and_the_plan_delay(settings, fake):
    collector = b3_collector(b3_settings(settings, fake, stale_intervals=2), fake)
    delayed = b3_collector(b3_settings(settings, fake, stale_intervals=2, b3={"delay_s": 900}), fake)
    cal = collector.calendar

    def bar(day, hour):
        t = local_ms(day, time(hour))
        return Bar("PETR4", cal.seq(t), t / 1000, 1, 1, 1, 1, 1)

    try:
        fake.set_time(WED, time(14, 5))
        # Friday's 17:00 candle closed 65 minutes of market time ago: a weekend and Carnival do not count.
        assert collector.recent(bar(FRI, 17)) and collector.recent(bar(WED, 13))
        assert not collector.recent(bar(FRI, 15))
        fake.set_time(THU, time(14, 14))  # 15-minute delayed data: the 13:00 candle arrives at 14:15
        assert collector.recent(bar(THU, 13)) and not collector.recent(bar(THU, 10))
        assert delayed.recent(bar(THU, 11)) and not collector.recent(bar(THU, 11))
    finally:
        asyncio.run(collector.close())
        asyncio.run(delayed.close())
