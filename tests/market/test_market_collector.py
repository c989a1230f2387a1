"""The market-data collector through the real ccxt client (REST and ccxt.pro's WebSocket)
against the local fake Binance: prefetch, streaming, reconnect with backfill, the polling
fallback, stale data, restarts and the exchange's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fake_exchange import FakeBinance
from market_env import (
    SYMBOLS,
    by_symbol,
    closed_port,
    drain,
    klines_requests,
    make_collector,
    market_settings,
    running,
    stop,
    streaming,
    take,
    until,
)

from sorte.market import MarketAlert


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(SYMBOLS)).start().start_stream()
    yield exchange
    exchange.stop()


def seqs(fake: FakeBinance, first: int, last: int) -> list[int]:
    return [fake.seq(i) for i in range(first, last + 1)]


def test_prefetch_fills_the_cache_with_the_lookback(settings, fake):
    collector = make_collector(market_settings(settings, fake, prefetch_bars=20), fake)

    async def body():
        await collector.start()
        try:
            return collector.health(), collector.history("BTC/USDT", 50)
        finally:
            await collector.close()

    health, window = asyncio.run(body())
    # Candle 50 is in progress: the lookback is the 20 closed candles before it, warm for bar 50.
    assert list(window.ts) == [fake.bar_open_ms(i) / 1000 for i in range(30, 50)]
    assert window.close[-1] == pytest.approx(fake.candles["BTCUSDT"][fake.bar_open_ms(49)][3])
    assert [s.last_seq for s in health.symbols] == [fake.seq(49)] * 2
    assert health.market_open and health.opens_at is None  # a crypto exchange never closes
    assert (settings.data_dir / "market" / "binance.db").exists()


def test_a_restart_reads_the_cache_and_fetches_only_what_it_lacks(settings, fake):
    s = market_settings(settings, fake, prefetch_bars=20)

    async def start_and_close():
        collector = make_collector(s, fake)
        await collector.start()
        await collector.close()
        return collector

    asyncio.run(start_and_close())
    first = len(klines_requests(fake))
    fake.advance(3)
    again = asyncio.run(start_and_close())
    fetched = klines_requests(fake)[first:]
    # One request per symbol, from the first candle the cache lacks (50), not the whole lookback.
    assert sorted((p["symbol"], int(p["startTime"])) for p in fetched) == [
        ("BTCUSDT", fake.bar_open_ms(50)),
        ("ETHUSDT", fake.bar_open_ms(50)),
    ]
    assert again.states["BTC/USDT"].last_seq == fake.seq(52)
    before = len(klines_requests(fake))
    asyncio.run(start_and_close())
    assert len(klines_requests(fake)) == before  # nothing new on the exchange: nothing fetched


def test_websocket_streams_closed_candles_once_and_in_order(settings, fake):
    # A long poll interval: a candle due but not streamed would come from REST only after ~4 s.
    collector = make_collector(market_settings(settings, fake, poll_interval_s=2.0), fake)

    async def body():
        queue, task = await streaming(collector, fake)
        try:
            rest_before = len(klines_requests(fake))
            for _ in range(5):
                fake.advance(1)
            fake.stream.publish(range(50, 56))  # the same events again: nothing is emitted twice
            bars = await take(queue, 10)
            await asyncio.sleep(0.3)
            return bars, drain(queue), len(klines_requests(fake)) - rest_before, collector.health()
        finally:
            await stop(collector, task)

    bars, extra, rest_calls, health = asyncio.run(body())
    assert by_symbol(bars) == {s: seqs(fake, 50, 54) for s in SYMBOLS}
    assert extra == []  # candle 55 is in progress: never emitted; the repeats were dropped
    assert rest_calls == 0 and health.streamed_candles == 10 and health.mode == "websocket"
    o, h, lo, c, v = fake.candles["ETHUSDT"][fake.bar_open_ms(52)]
    bar = next(b for b in bars if b.symbol == "ETH/USDT" and b.seq == fake.seq(52))
    # The final snapshot of the candle, not a partial one.
    assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == pytest.approx(
        (fake.bar_open_ms(52) / 1000, o, h, lo, c, v)
    )


def test_a_dropped_socket_reconnects_and_backfills_without_gap_or_double(settings, fake):
    # One failed connection in a row would mean polling: a lost working one must not count.
    collector = make_collector(market_settings(settings, fake, poll_interval_s=2.0, websocket_failures=1), fake)

    async def body():
        queue, task = await streaming(collector, fake)
        try:
            fake.advance(2)
            streamed = await take(queue, 4)
            # The socket dies, and three candles close before the collector can reconnect.
            assert fake.drop_streams() == 1
            fake.advance(3)
            backfilled = await take(queue, 6)
            await until(lambda: len(fake.stream.subscribed()) == 2, what="the streams after the reconnect")
            fake.advance(2)
            after = await take(queue, 4)
            await asyncio.sleep(0.3)
            return streamed + backfilled + after, drain(queue), collector.health()
        finally:
            await stop(collector, task)

    bars, extra, health = asyncio.run(body())
    assert by_symbol(bars) == {s: seqs(fake, 50, 56) for s in SYMBOLS}
    assert extra == []
    assert health.reconnects >= 1 and fake.stream.connections >= 2 and health.mode == "websocket"
    assert health.backfilled_candles >= 6 and health.gaps == 0


def test_a_candle_the_stream_skipped_is_backfilled_before_the_next_one(settings, fake):
    collector = make_collector(market_settings(settings, fake, poll_interval_s=2.0), fake)

    async def body():
        queue, task = await streaming(collector, fake)
        try:
            fake.stream.muted = {50}  # candle 50's events never arrive; the socket stays up
            fake.advance(2)
            bars = await take(queue, 4)
            await asyncio.sleep(0.3)
            return bars, drain(queue), collector.health()
        finally:
            await stop(collector, task)

    bars, extra, health = asyncio.run(body())
    assert by_symbol(bars) == {s: seqs(fake, 50, 51) for s in SYMBOLS} and extra == []
    assert health.gaps == 0 and health.reconnects == 0
    assert health.backfilled_candles == 2 and health.streamed_candles == 2


def test_a_candle_from_rest_and_then_from_the_stream_is_emitted_once(settings, fake):
    collector = make_collector(market_settings(settings, fake, poll_interval_s=0.2), fake)

    async def body():
        queue, task = await streaming(collector, fake)
        try:
            fake.stream.muted = {50, 51}
            fake.advance(1)
            late = await take(queue, 2)  # candle 50 is due and silent: REST fetches it
            fake.stream.muted.clear()
            fake.stream.publish(range(50, 52))  # now the stream delivers candle 50 too
            fake.advance(1)
            bars = await take(queue, 2)
            await asyncio.sleep(0.3)
            return late + bars, drain(queue)
        finally:
            await stop(collector, task)

    bars, extra = asyncio.run(body())
    assert by_symbol(bars) == {s: seqs(fake, 50, 51) for s in SYMBOLS} and extra == []


def test_websocket_unavailable_falls_back_to_rest_polling(settings, fake):
    s = market_settings(settings, fake, ws_url=f"ws://127.0.0.1:{closed_port()}", websocket_failures=2)
    collector = make_collector(s, fake)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            await until(lambda: collector.mode == "polling", what="the polling fallback")
            fake.advance(2)
            bars = await take(queue, 4)
            return bars, collector.health()
        finally:
            await stop(collector, task)

    bars, health = asyncio.run(body())
    assert by_symbol(bars) == {s: seqs(fake, 50, 51) for s in SYMBOLS}
    assert health.mode == "polling" and health.reconnects >= 2 and health.backfilled_candles == 4


def test_exchange_down_alerts_stale_emits_nothing_then_recovers_and_catches_up(settings, fake):
    alerts: list[MarketAlert] = []
    collector = make_collector(market_settings(settings, fake, stale_intervals=3), fake, alerts=alerts)

    async def body():
        queue, task = await streaming(collector, fake)
        try:
            fake.set_down(True)
            fake.advance(4)  # candles 50..53 close while the exchange is unreachable
            await until(lambda: len(alerts) == 2, what="the stale alerts")
            down = (drain(queue), collector.health(), collector.entries_allowed("BTC/USDT"))
            fake.set_down(False)
            await until(lambda: len(alerts) == 4, what="the recovery alerts")
            bars = await take(queue, 8)
            return down, bars, collector.health()
        finally:
            await stop(collector, task)

    (during, health_down, entries_down), bars, health = asyncio.run(body())
    assert during == []  # never the last price again as a new bar
    assert health_down.stale_symbols == SYMBOLS and not health_down.entries_allowed and not entries_down
    # One alert per symbol going stale, one per symbol recovering: never repeated.
    assert sorted((a.kind, a.symbol) for a in alerts[:2]) == [("stale", s) for s in SYMBOLS]
    assert sorted((a.kind, a.symbol) for a in alerts[2:]) == [("recovered", s) for s in SYMBOLS]
    assert by_symbol(bars) == {s: seqs(fake, 50, 53) for s in SYMBOLS}
    assert health.stale_symbols == [] and health.entries_allowed and health.reconnects >= 1


@pytest.mark.parametrize("skew_s", [-3600.0, 90.0])
def test_the_exchange_clock_offset_is_measured_and_applied(settings, fake, skew_s):
    # The local clock an hour slow would hold every candle back; 90 s fast it would take the
    # in-progress candle 50 (and, REST polled, its partial values) for a closed one.
    collector = make_collector(market_settings(settings, fake, ws_url=None), fake, skew_s=skew_s)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            cached = collector.history("BTC/USDT", 100)
            fake.advance(1)
            bars = await take(queue, 2)
            await asyncio.sleep(0.5)
            return cached, bars, drain(queue), collector.health()
        finally:
            await stop(collector, task)

    cached, bars, extra, health = asyncio.run(body())
    assert health.clock_offset_s == pytest.approx(-skew_s, abs=1)
    assert cached.ts[-1] == fake.bar_open_ms(49) / 1000
    assert by_symbol(bars) == {s: seqs(fake, 50, 50) for s in SYMBOLS} and extra == []
