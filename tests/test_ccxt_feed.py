"""The live ccxt feed, through the real ccxt client against a local fake Binance."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from fake_exchange import FakeBinance
from structlog.testing import capture_logs

from sorte.config import ExchangeSettings, RuntimeSettings, Settings
from sorte.errors import ConfigError, DataError
from sorte.runtime.ccxt_feed import CcxtPollingFeed, ExchangeError
from sorte.runtime.live import build_live_session
from sorte.runtime.values import Bar

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(SYMBOLS)).start()
    yield exchange
    exchange.stop()


def live_settings(settings: Settings, fake: FakeBinance, symbols: list[str] | None = None, **exchange: Any) -> Settings:
    return settings.model_copy(
        update={
            "exchange": ExchangeSettings(**{"base_url": fake.url, "timeframe": "1m", **exchange}),
            "runtime": RuntimeSettings(feed="ccxt", symbols=symbols or SYMBOLS, batch_interval_s=0.01),
        }
    )


def make_feed(settings: Settings, fake: FakeBinance, **kw: Any) -> CcxtPollingFeed:
    options = {"timeout_s": 0.5, "attempts": 2, "backoff_s": 0.01, "min_poll_s": 0.0, "rate_limit": False, **kw}
    return CcxtPollingFeed(settings, clock=fake.clock, **options)


def run(feed: CcxtPollingFeed, body: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        try:
            return await body()
        finally:
            await feed.close()

    return asyncio.run(main())


async def drain(feed: CcxtPollingFeed) -> list[list[Bar]]:
    """Every batch the feed has now, until it says no new bar has closed."""
    batches = []
    while batch := await feed.next_batch():
        batches.append(batch)
    return batches


def test_only_closed_candles_each_once(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake)

    async def body():
        cursor = await feed.prime()
        # Candle 50 is in progress: the feed starts after candle 49, the last closed one.
        assert cursor == {s: fake.seq(49) for s in SYMBOLS}
        assert await feed.next_batch() == []
        fake.advance(1)
        first = await drain(feed)
        fake.advance(3)
        later = await drain(feed)
        assert await feed.next_batch() == []  # polled again: nothing repeated
        return first, later

    first, later = run(feed, body)
    assert [[(b.symbol, b.seq) for b in batch] for batch in first] == [[(s, fake.seq(50)) for s in SYMBOLS]]
    assert [batch[0].seq for batch in later] == [fake.seq(i) for i in (51, 52, 53)]
    assert all(len({b.ts for b in batch}) == 1 and len(batch) == 2 for batch in later)  # one timestamp per batch
    bar = first[0][0]
    o, h, lo, c, v = fake.candles["BTCUSDT"][fake.bar_open_ms(50)]
    # The bar carries the candle's final values, not the partial ones seen while it was open.
    assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume) == pytest.approx(
        (fake.bar_open_ms(50) / 1000, o, h, lo, c, v)
    )
    assert bar.seq == int(bar.ts // 60)


def test_the_in_progress_candle_is_never_emitted(settings, fake):
    feed = make_feed(live_settings(settings, fake, ["BTC/USDT"]), fake)

    async def body():
        feed.seek({"BTC/USDT": fake.seq(40)})
        return await drain(feed)

    batches = run(feed, body)
    assert [b[0].seq for b in batches] == [fake.seq(i) for i in range(41, 50)]
    assert fake.seq(fake.current_index()) not in [b[0].seq for b in batches]


def test_a_gap_in_the_sequence_is_detected_and_logged(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake)
    fake.drop("BTC/USDT", 50)

    async def body():
        await feed.prime()
        fake.advance(2)
        with capture_logs() as logs:
            batches = await drain(feed)
        return batches, logs

    batches, logs = run(feed, body)
    assert [[(b.symbol, b.seq) for b in batch] for batch in batches] == [
        [("ETH/USDT", fake.seq(50))],
        [("BTC/USDT", fake.seq(51)), ("ETH/USDT", fake.seq(51))],
    ]
    assert feed.gaps == [("BTC/USDT", fake.seq(50), fake.seq(51))]
    gap = [e for e in logs if e["event"] == "feed_gap"]
    assert gap == [
        {
            "event": "feed_gap",
            "log_level": "warning",
            "symbol": "BTC/USDT",
            "expected_seq": fake.seq(50),
            "got_seq": fake.seq(51),
            "missing_bars": 1,
        }
    ]


def test_resume_after_a_cursor_catches_up_without_repeats(settings, fake):
    s = live_settings(settings, fake)
    feed = make_feed(s, fake)

    async def body():
        feed.seek({"BTC/USDT": fake.seq(45), "ETH/USDT": fake.seq(47)})
        return await drain(feed)

    batches = run(feed, body)
    seen = [(b.symbol, b.seq) for batch in batches for b in batch]
    assert seen == [
        ("BTC/USDT", fake.seq(46)),
        ("BTC/USDT", fake.seq(47)),
        ("BTC/USDT", fake.seq(48)),
        ("ETH/USDT", fake.seq(48)),
        ("BTC/USDT", fake.seq(49)),
        ("ETH/USDT", fake.seq(49)),
    ]
    # A second process resuming from the cursor the first one reached sees only newer bars.
    again = make_feed(s, fake)
    fake.advance(1)

    async def resumed():
        again.seek({"BTC/USDT": fake.seq(49), "ETH/USDT": fake.seq(49)})
        return await drain(again)

    assert [[b.seq for b in batch] for batch in run(again, resumed)] == [[fake.seq(50)] * 2]


def test_history_gives_the_warm_up_window_before_a_sequence(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake)

    async def body():
        return (
            await feed.history("BTC/USDT", fake.seq(30), 20),
            await feed.history("ETH/USDT", fake.seq(51), 5),  # reaches the in-progress candle
        )

    window, recent = run(feed, body)
    assert len(window) == 20 and window.interval_s == 60
    assert list(window.ts) == [fake.bar_open_ms(i) / 1000 for i in range(10, 30)]
    assert window.close[-1] == pytest.approx(fake.candles["BTCUSDT"][fake.bar_open_ms(29)][3])
    # Only closed candles: the in-progress candle 50 is not part of any window.
    assert list(recent.ts) == [fake.bar_open_ms(i) / 1000 for i in range(46, 50)]


def test_symbols_are_polled_concurrently(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake, timeout_s=2.0)

    async def body():
        await feed.prime()
        fake.delays["GET /api/v3/klines"] = [0.5, 0.5]
        fake.advance(1)
        return await feed.next_batch()

    batch = run(feed, body)
    assert len(batch) == 2
    assert fake.max_delayed_in_flight == 2  # both symbols' slow answers were awaited at once


# -- failures: one clear error or a retry, never a hang --------------------------------------


def test_unknown_exchange_name_is_a_config_error(settings, fake):
    with pytest.raises(ConfigError, match="unknown exchange 'binancee'"):
        make_feed(live_settings(settings, fake, name="binancee"), fake)


def test_invalid_timeframe_and_missing_symbols_are_config_errors(settings, fake):
    with pytest.raises(ConfigError, match="invalid timeframe '7x'"):
        make_feed(live_settings(settings, fake, timeframe="7x"), fake)
    no_symbols = live_settings(settings, fake).model_copy(update={"runtime": RuntimeSettings(feed="ccxt")})
    with pytest.raises(ConfigError, match="needs symbols"):
        make_feed(no_symbols, fake)


def test_unknown_symbol_is_named(settings, fake):
    feed = make_feed(live_settings(settings, fake, ["BTC/USDT", "DOGE/USDT"]), fake)
    with pytest.raises(DataError, match="unknown symbol 'DOGE/USDT' on binance at http://127.0.0.1"):
        run(feed, feed.next_batch)


def test_symbol_missing_from_the_exchange_is_named(settings, fake):
    fake.missing.add("ETH/USDT")
    feed = make_feed(live_settings(settings, fake), fake)
    with pytest.raises(DataError, match="unknown symbol 'ETH/USDT'"):
        run(feed, feed.prime)


def test_server_down_gives_up_after_bounded_retries(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake, attempts=3)
    fake.stop()
    with capture_logs() as logs, pytest.raises(ExchangeError) as err:
        run(feed, feed.next_batch)
    message = str(err.value)
    assert "is unreachable" in message and "gave up after 3 attempts" in message and "\n" not in message
    assert [e["attempt"] for e in logs if e["event"] == "exchange_retry"] == [1, 2, 3]


def test_slow_answer_past_the_timeout_fails_clearly(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake, timeout_s=0.3)
    fake.delays["GET /api/v3/exchangeInfo"] = [3.0, 3.0]
    with pytest.raises(ExchangeError, match=r"did not answer within 0.3 s \(loading markets; gave up after 2"):
        run(feed, feed.next_batch)


def test_one_slow_answer_is_retried(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake, timeout_s=0.3)

    async def body():
        await feed.prime()
        fake.advance(1)
        fake.delays["GET /api/v3/klines"] = [2.0]  # the first of the next two calls is late
        with capture_logs() as logs:
            batch = await feed.next_batch()
        return batch, logs

    batch, logs = run(feed, body)
    assert [b.seq for b in batch] == [fake.seq(50)] * 2
    assert [e["reason"] for e in logs if e["event"] == "exchange_retry"] == ["did not answer within 0.3 s"]


def test_transient_server_error_is_retried(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake)
    fake.errors["GET /api/v3/exchangeInfo"] = [503]
    assert run(feed, feed.prime) == {s: fake.seq(49) for s in SYMBOLS}


@pytest.mark.parametrize("body", ["{not json", '{"code": 0}', '[[1700000000000, "x"]]', "[[1, 2, 1, 3, 1, 1]]"])
def test_malformed_candles_fail_clearly(settings, fake, body):
    feed = make_feed(live_settings(settings, fake), fake)
    fake.malformed["GET /api/v3/klines"] = body
    with pytest.raises(ExchangeError, match="malformed answer from binance at http://127.0.0.1:[0-9]+ for candles of"):
        run(feed, feed.prime)


def test_malformed_market_list_fails_clearly(settings, fake):
    feed = make_feed(live_settings(settings, fake), fake)
    fake.malformed["GET /api/v3/exchangeInfo"] = "<html>maintenance</html>"
    with pytest.raises(ExchangeError, match="malformed answer .* while loading markets"):
        run(feed, feed.prime)


# -- the runtime on live data (paper broker) --------------------------------------------------


def run_session(session, fake: FakeBinance, steps: int) -> Any:
    """Run ``steps`` runtime steps; each batch interval moves the exchange on by one bar."""
    fake.clock.bars_per_sleep = 1
    return asyncio.run(asyncio.wait_for(session.runtime.run(max_steps=steps), 20))


def test_paper_session_on_live_data_runs_and_resumes(settings, fake):
    s = live_settings(settings, fake)
    session = build_live_session(s, feed=make_feed(s, fake))
    assert session.ledger_path == s.data_dir / "paper-live" / "ledger.db"
    assert session.total_steps is None and session.runtime.feed.live
    start = fake.current_index()
    summary = run_session(session, fake, 3)
    rt = session.runtime
    assert summary.steps == 3 and summary.bars == 6
    # Warmed up from history on the fresh start: a full cascade window before the first bar.
    assert len(rt.buffers["BTC/USDT"].cols[0]) == rt.cascade.window
    cursor = session.ledger.cursor()
    assert cursor == {sym: fake.seq(start + 2) for sym in SYMBOLS}
    session.ledger.close()

    again = build_live_session(s, feed=make_feed(s, fake))
    first_bars: list[Bar] = []
    again.runtime.feed.next_batch = _spy(again.runtime.feed.next_batch, first_bars)
    summary = run_session(again, fake, 2)
    assert summary.resumed_from_step == 3 and summary.steps == 5
    assert {b.seq for b in first_bars[:2]} == {fake.seq(start + 3)}  # straight after the cursor
    again.ledger.close()


def _spy(next_batch: Callable[[], Awaitable[list[Bar] | None]], seen: list[Bar]):
    async def wrapper() -> list[Bar] | None:
        batch = await next_batch()
        seen.extend(batch or [])
        return batch

    return wrapper


def test_a_ledger_of_another_market_is_refused(settings, fake):
    s = live_settings(settings, fake)
    build_live_session(s, feed=make_feed(s, fake)).ledger.close()
    other = live_settings(settings, fake, ["BTC/USDT"])
    with pytest.raises(ConfigError, match="belongs to another market"):
        build_live_session(other, feed=make_feed(other, fake))
    fresh = build_live_session(other, fresh=True, feed=make_feed(other, fake))
    assert fresh.ledger.cursor() == {}
    fresh.ledger.close()
