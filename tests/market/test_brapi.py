"""brapi's client and the B3 venue against the local fake brapi: the token (from the
environment, never in a log or an error), refused tokens and unknown tickers as clear errors,
429 with Retry-After, retried 5xx answers, malformed answers and the range chosen for a start."""

from __future__ import annotations

import asyncio
import logging
import time as timer
from collections.abc import Iterator
from datetime import time

import pytest
import structlog
from b3_env import THU, TICKERS, b3_collector, b3_settings, fake_b3
from fake_brapi import TOKEN, FakeBrapi, local_ms
from market_env import running, stop, take

from sorte.config import Settings
from sorte.errors import ConfigError, DataError
from sorte.market.b3.brapi import BrapiClient, env_token, range_for
from sorte.runtime.ccxt_feed import ExchangeError


@pytest.fixture()
def fake() -> Iterator[FakeBrapi]:
    brapi = fake_b3()
    yield brapi
    brapi.stop()


def client(fake: FakeBrapi, token: str | None = TOKEN, attempts: int = 3) -> BrapiClient:
    return BrapiClient(fake.url, token, timeout_s=2.0, attempts=attempts, backoff_s=0.05)


def run(coro_fn):
    """Run ``coro_fn(c)`` with a fresh client's ``c`` closed afterwards."""

    async def body(c: BrapiClient):
        try:
            return await coro_fn(c)
        finally:
            await c.close()

    return body


@pytest.mark.parametrize(
    ("days", "name"),
    [(1, "1d"), (2, "5d"), (5, "5d"), (6, "1mo"), (28, "1mo"), (29, "3mo"), (400, "2y"), (9999, "max")],
)
def test_the_smallest_range_that_surely_reaches_back(days, name):
    assert range_for(days) == name


def test_the_token_comes_from_the_environment(settings, monkeypatch):
    monkeypatch.setenv("SORTE_MARKET__B3__TOKEN", "from-sorte-env")
    monkeypatch.setenv("BRAPI_TOKEN", "from-brapi-env")
    loaded = Settings(data_dir=settings.data_dir)
    assert env_token(loaded) == "from-sorte-env"
    assert "from-sorte-env" not in str(loaded.masked())
    monkeypatch.delenv("SORTE_MARKET__B3__TOKEN")
    assert env_token(Settings(data_dir=settings.data_dir)) == "from-brapi-env"  # the conventional name
    monkeypatch.delenv("BRAPI_TOKEN")
    assert env_token(Settings(data_dir=settings.data_dir)) is None


def test_the_token_travels_in_the_header_and_checks_out(fake):
    result = asyncio.run(run(lambda c: c.history("PETR4", "1h", "1d"))(client(fake)))
    assert result and all(r.authorized for r in fake.requests)
    assert all("token" not in r.params for r in fake.requests)


def test_a_refused_token_is_a_clear_error_naming_the_fix(settings, fake):
    collector = b3_collector(b3_settings(settings, fake, token="wrong-token-value"), fake)

    async def body():
        try:
            await collector.start()
        finally:
            await collector.close()

    with pytest.raises(ConfigError) as refused:
        asyncio.run(body())
    message = str(refused.value)
    assert "refused the token (401" in message and "SORTE_MARKET__B3__TOKEN" in message
    assert "wrong-token-value" not in message
    assert len(fake.requests) == 1  # never retried
    with pytest.raises(ConfigError, match="wants a token"):
        asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake, token=None)))


def test_an_unknown_ticker_is_a_clear_error(settings, fake):
    s = b3_settings(settings, fake)
    s = s.model_copy(update={"runtime": s.runtime.model_copy(update={"symbols": ["PETR4", "XPTO9"]})})
    collector = b3_collector(s, fake)

    async def body():
        try:
            await collector.start()
        finally:
            await collector.close()

    with pytest.raises(DataError, match="unknown ticker 'XPTO9'.*Não encontramos a ação XPTO9"):
        asyncio.run(body())


def test_a_timeframe_brapi_does_not_offer_is_refused(settings, fake):
    with pytest.raises(ConfigError, match="timeframe '4h' is not offered for B3"):
        b3_collector(b3_settings(settings, fake, timeframe="4h"), fake)


def test_429_waits_as_long_as_retry_after_says(fake):
    fake.errors = [429]
    fake.retry_after = "1"

    async def twice(c: BrapiClient):
        started = timer.monotonic()
        first = await c.history("PETR4", "1h", "1d")
        return first, timer.monotonic() - started

    rows, took = asyncio.run(run(twice)(client(fake)))
    assert rows and took >= 1.0 and len(fake.requests) == 2


def test_a_long_retry_after_fails_now_and_holds_the_next_calls_back(fake):
    fake.errors = [429]
    fake.retry_after = "3600"

    async def body(c: BrapiClient):
        with pytest.raises(ExchangeError, match=r"rate limiting requests \(429, retry after 3600 s\)"):
            await c.quote("PETR4")
        with pytest.raises(ExchangeError, match="rate limiting requests for another"):
            await c.quote("PETR4")

    asyncio.run(run(body)(client(fake)))
    assert len(fake.requests) == 1  # the second call did not reach brapi


def test_5xx_answers_are_retried_then_given_up(fake):
    fake.errors = [502, 503]
    assert asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake)))["symbol"] == "PETR4"
    fake.errors = [500, 500, 500]
    with pytest.raises(ExchangeError, match=r"answered 500.*gave up after 3 attempts"):
        asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake)))


def test_unreachable_and_malformed_answers(fake):
    fake.malformed = "<html>maintenance</html>"
    with pytest.raises(ExchangeError, match="malformed answer from brapi.*not JSON"):
        asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake)))
    fake.malformed = '{"results": [{"symbol": "PETR4", "historicalDataPrice": "x"}]}'
    with pytest.raises(ExchangeError, match="malformed answer.*historicalDataPrice is not a list"):
        asyncio.run(run(lambda c: c.history("PETR4", "1h", "1d"))(client(fake)))
    fake.malformed = '{"results": []}'
    with pytest.raises(ExchangeError, match="malformed answer.*no results"):
        asyncio.run(run(lambda c: c.history("PETR4", "1h", "1d"))(client(fake)))
    url = fake.url
    fake.stop()
    with pytest.raises(ExchangeError, match=f"brapi at {url} is unreachable.*gave up after 2 attempts"):
        asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake, attempts=2)))


def test_malformed_candles_are_refused_by_the_venue(settings, fake):
    collector = b3_collector(b3_settings(settings, fake), fake)
    venue = collector.venue
    good = {"date": local_ms(THU, time(11)) // 1000, "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 9}
    try:
        assert venue.rows("PETR4", [good, {**good, "open": None}]) == [
            [float(local_ms(THU, time(11))), 1.0, 2.0, 0.5, 1.5, 9.0]
        ]  # a candle without prices (no trade) is left out
        for bad in ({**good, "high": 0.1}, {**good, "close": "NaN"}, {**good, "date": None}, "row"):
            with pytest.raises(ExchangeError, match="malformed answer"):
                venue.rows("PETR4", [bad])
        off = {**good, "date": local_ms(THU, time(19)) // 1000}  # after the close
        assert venue.rows("PETR4", [off]) == []
    finally:
        asyncio.run(collector.close())


def test_the_token_never_reaches_a_log_line(settings, fake, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at debug/info
    collector = b3_collector(b3_settings(settings, fake), fake)

    async def body():
        queue = collector.subscribe()
        task = await running(collector)
        try:
            fake.errors = [503, 429]  # a retry and a rate limit, logged
            fake.set_time(THU, time(14, 5))
            return await take(queue, 4)
        finally:
            await stop(collector, task)

    with structlog.testing.capture_logs() as logs:
        bars = asyncio.run(body())
        with pytest.raises(ConfigError) as refused:
            asyncio.run(run(lambda c: c.quote("PETR4"))(client(fake, token=TOKEN + "-revoked")))
    assert {b.symbol for b in bars} == set(TICKERS)
    assert any(e["event"] == "exchange_retry" for e in logs)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # the requests were logged
    text = " ".join(str(e) for e in logs) + " ".join(r.getMessage() for r in caplog.records) + caplog.text
    assert TOKEN not in text and TOKEN not in str(refused.value)
