"""The pair selector through the real ccxt client against the local fake Binance: its 24 h
tickers (``GET /api/v3/ticker/24hr``), 2,000 symbols, malformed tickers, the refresh schedule, the
saved selection, the candle history by REST and by the cache, and an exchange that is down."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
from fake_exchange import FakeBinance

from sorte.config import ExchangeSettings, MarketSettings, PairsSettings, Settings
from sorte.errors import ConfigError
from sorte.market.cache import CandleCache
from sorte.market.pairs import PairSelector, read_selection, select_pairs
from sorte.paths import pairs_file
from sorte.runtime.ccxt_feed import ExchangeError, create_exchange

FAST = {"request_timeout_s": 1.0, "request_attempts": 2, "reconnect_backoff_s": 0.05}
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "USDC/USDT", "ETH/BTC")


class Now:
    """The selector's clock, moved by the test."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(SYMBOLS).start()
    for symbol, volume in {"BTC/USDT": 5e9, "ETH/USDT": 2e9, "SOL/USDT": 4e8, "USDC/USDT": 9e9, "ETH/BTC": 1e9}.items():
        exchange.set_ticker(symbol, quote_volume=volume)
    yield exchange
    exchange.stop()


def with_pairs(settings: Settings, fake: FakeBinance, **pairs: Any) -> Settings:
    return settings.model_copy(
        update={
            "exchange": ExchangeSettings(base_url=fake.url, timeframe="1m"),
            "market": MarketSettings(**FAST, pairs=PairsSettings(**pairs)),
        }
    )


def refresh(selector: PairSelector):
    async def body():
        try:
            return await selector.refresh()
        finally:
            await selector.close()

    return asyncio.run(body())


def ticker_requests(fake: FakeBinance) -> list[dict[str, str]]:
    return [p for m, path, p in fake.requests if m == "GET" and path == "/api/v3/ticker/24hr"]


def test_the_fake_exchange_answers_tickers_as_binance_does(fake):
    """All symbols, ``symbol=`` and ``symbols=[...]``, through ccxt's fetch_tickers/fetch_ticker."""
    fake.set_ticker("SOL/USDT", spread_pct=0.4, last=20.0, high=22.0, low=18.0, change_pct=-3.0)

    async def body():
        exchange = create_exchange(ExchangeSettings(base_url=fake.url), asynchronous=True)
        try:
            every = await exchange.fetch_tickers()
            some = await exchange.fetch_tickers(["BTC/USDT", "SOL/USDT"])
            one = await exchange.fetch_ticker("ETH/USDT")
            with pytest.raises(ccxt.BadSymbol):
                await exchange.fetch_ticker("NOPE/USDT")
            return every, some, one
        finally:
            await exchange.close()

    every, some, one = asyncio.run(body())
    assert set(every) == set(SYMBOLS)
    assert set(some) == {"BTC/USDT", "SOL/USDT"} and one["symbol"] == "ETH/USDT"
    sol = every["SOL/USDT"]
    assert (sol["last"], sol["high"], sol["low"], sol["percentage"]) == (20.0, 22.0, 18.0, -3.0)
    assert (sol["ask"] - sol["bid"]) / sol["ask"] * 100 == pytest.approx(0.4, rel=1e-6)
    btc = every["BTC/USDT"]
    # Derived from the candles of the last 24 h: the in-progress one is the last price.
    rows = [fake.kline("BTCUSDT", t) for t in sorted(fake.candles["BTCUSDT"]) if t <= fake.now_ms]
    assert btc["last"] == pytest.approx(float(rows[-1][4]))
    assert btc["high"] == pytest.approx(max(float(r[2]) for r in rows))
    assert btc["baseVolume"] == pytest.approx(sum(float(r[5]) for r in rows))
    assert btc["quoteVolume"] == 5e9  # set by the test
    forms = ticker_requests(fake)
    assert forms[0] == {} and json.loads(forms[1]["symbols"]) == ["BTCUSDT", "SOLUSDT"]
    assert forms[2] == {"symbol": "ETHUSDT"}


def test_a_refresh_selects_saves_and_keeps_the_selection(settings, fake):
    clock = Now()
    s = with_pairs(settings, fake)
    selector = PairSelector(s, clock=clock)
    assert selector.due() and selector.at is None
    selection = refresh(selector)
    # USDC/USDT is blacklisted by default, ETH/BTC is quoted in BTC
    assert selection.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert selection.source == "binance" and selection.timeframe == "1m" and selection.at == clock.t
    assert {r.symbol: r.filter for r in selection.rejected} == {"USDC/USDT": "blacklist", "ETH/BTC": "quote"}
    assert selection.tickers == 5 and selection.eligible == 3
    assert read_selection(pairs_file(s.data_dir)) == selection
    assert selector.last == selection and selector.at == clock.t
    assert len(ticker_requests(fake)) == 1


def test_a_refresh_is_due_every_refresh_s_and_a_restart_takes_the_saved_one_over(settings, fake):
    clock = Now()
    s = with_pairs(settings, fake, refresh_s=600)
    selector = PairSelector(s, clock=clock)

    async def body():
        try:
            first = await selector.refresh_if_due()
            clock.t += 599
            early = await selector.refresh_if_due()
            clock.t += 1
            assert selector.due() and selector.next_refresh() == clock.t
            second = await selector.refresh_if_due()
            return first, early, second
        finally:
            await selector.close()

    first, early, second = asyncio.run(body())
    assert first is not None and early is None and second is not None and second.at == first.at + 600
    assert len(ticker_requests(fake)) == 2
    # A restart: the saved selection stands until it is due...
    again = PairSelector(s, clock=clock)
    assert again.last == second and not again.due() and again.next_refresh() == second.at + 600
    asyncio.run(again.close())
    # ... unless it was made with other settings.
    other = PairSelector(with_pairs(settings, fake, refresh_s=600, number_assets=2), clock=clock)
    assert other.last is None and other.due()
    asyncio.run(other.close())


def test_two_thousand_symbols_through_ccxt(settings, fake):
    rng = random.Random(7)
    synthetic = {}
    for i in range(2000):
        price = rng.uniform(0.01, 500)
        quote = "USDT" if i % 4 else "BTC"
        synthetic[f"S{i:04d}/{quote}"] = {
            "last": price,
            "high": price * rng.uniform(1.0, 1.4),
            "low": price * rng.uniform(0.8, 1.0),
            "quote_volume": rng.lognormvariate(14, 2),
            "spread_pct": rng.uniform(0.01, 1.0),
        }
    fake.add_symbols(synthetic)
    s = with_pairs(settings, fake, number_assets=30)
    selection = refresh(PairSelector(s, clock=Now()))
    assert selection.tickers == 2000 + len(SYMBOLS)
    assert len(selection.selected) == 30
    assert len(selection.selected) + len(selection.rejected) == selection.tickers
    counts = selection.rejected_by()
    assert counts["quote"] == 500 + 1 and counts["max_spread"] > 0 and counts["min_quote_volume"] > 0
    picked = [synthetic[p] for p in selection.symbols if p in synthetic]
    assert all(f["quote_volume"] >= 1e6 and f["spread_pct"] <= 0.5 for f in picked)
    assert all(p.endswith("/USDT") for p in selection.symbols)
    # The same as the pure function on the tickers and markets as ccxt parses them.

    async def fetch():
        exchange = create_exchange(ExchangeSettings(base_url=fake.url), asynchronous=True)
        try:
            return await exchange.load_markets(), await exchange.fetch_tickers()
        finally:
            await exchange.close()

    markets, tickers = asyncio.run(fetch())
    expected = select_pairs(tickers, PairsSettings(number_assets=30), markets=markets)
    assert selection.selected == expected.selected
    assert selection.rejected == expected.rejected


def test_malformed_tickers_through_ccxt_are_refused_with_a_reason(settings, fake):
    fake.set_ticker("ETH/USDT", quote_volume=None, base_volume=None)
    fake.set_ticker("SOL/USDT", bid=None, ask=None)
    fake.set_ticker("BTC/USDT", high=None)
    selection = refresh(PairSelector(with_pairs(settings, fake), clock=Now()))
    assert selection.selected == []
    why = {r.symbol: (r.filter, r.reason) for r in selection.rejected}
    assert why["ETH/USDT"] == ("ticker", "no 24 h volume (quoteVolume and baseVolume missing)")
    assert why["SOL/USDT"][0] == "ticker" and "bid/ask" in why["SOL/USDT"][1]
    assert why["BTC/USDT"] == ("ticker", "no 24 h high/low for the volatility")


def test_min_history_by_rest(settings, fake):
    """BTC and ETH have 50 closed candles on the fake; a newly listed symbol has none."""
    fake.add_symbols({"NEW/USDT": {"last": 3.0, "high": 3.3, "low": 2.9, "quote_volume": 8e9}})
    s = with_pairs(settings, fake, min_history_bars=40)
    clock = Now(fake.now_ms / 1000)
    selection = refresh(PairSelector(s, history="rest", clock=clock))
    assert selection.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert [p.history_bars for p in selection.selected] == [40, 40, 40]
    assert {r.symbol: r.reason for r in selection.rejected if r.filter == "min_history"} == {
        "NEW/USDT": "0 candles known, needs 40"
    }
    longer = refresh(PairSelector(with_pairs(settings, fake, min_history_bars=500), history="rest", clock=clock))
    assert longer.selected == []
    assert {r.reason for r in longer.rejected if r.symbol == "BTC/USDT"} == {"50 candles known, needs 500"}


def test_min_history_and_volatility_from_the_candle_cache(settings, fake):
    cache = CandleCache(settings.data_dir / "market" / "binance.db")
    try:
        bars = [[60_000 * i, 100.0, 110.0, 100.0, 105.0, 1.0] for i in range(30)]  # a 10 % range
        cache.put("BTC/USDT", "1m", bars)
        cache.put("ETH/USDT", "1m", bars[:5])
        s = with_pairs(settings, fake, min_history_bars=20, volatility_lookback_bars=20)
        selector = PairSelector(
            s,
            history=lambda symbol: cache.count(symbol, "1m"),
            candles=lambda symbol, n: cache.last(symbol, "1m", n),
            clock=Now(),
        )
        selection = refresh(selector)
    finally:
        cache.close()
    assert selection.symbols == ["BTC/USDT"]
    assert selection.selected[0].volatility_pct == pytest.approx(10) and selection.selected[0].history_bars == 30
    why = {r.symbol: (r.filter, r.reason) for r in selection.rejected}
    assert why["ETH/USDT"] == ("volatility", "5 cached candles, the volatility lookback needs 20")
    assert why["SOL/USDT"] == ("volatility", "0 cached candles, the volatility lookback needs 20")


def test_an_async_history_count_is_awaited(settings, fake):
    asked = []

    async def history(symbol: str) -> int:
        asked.append(symbol)
        await asyncio.sleep(0)
        return 100 if symbol != "ETH/USDT" else 3

    s = with_pairs(settings, fake, min_history_bars=10, number_assets=2)
    selection = refresh(PairSelector(s, history=history, clock=Now()))
    assert selection.symbols == ["BTC/USDT", "SOL/USDT"]
    assert asked == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def test_missing_history_or_candle_sources_are_configuration_errors(settings, fake):
    with pytest.raises(ConfigError, match="min_history_bars needs a candle count"):
        PairSelector(with_pairs(settings, fake, min_history_bars=10))
    with pytest.raises(ConfigError, match="volatility_lookback_bars needs the candle cache"):
        PairSelector(with_pairs(settings, fake, volatility_lookback_bars=10))


def test_an_exchange_that_is_down_keeps_the_last_selection(settings, fake):
    clock = Now()
    s = with_pairs(settings, fake, refresh_s=60)
    selector = PairSelector(s, clock=clock)

    async def body():
        try:
            first = await selector.refresh()
            clock.t += 60
            fake.set_down(True)
            with pytest.raises(ExchangeError, match="gave up after 2 attempts"):
                await selector.refresh()
            return first
        finally:
            await selector.close()

    first = asyncio.run(body())
    assert selector.last == first and selector.due()
    assert read_selection(pairs_file(s.data_dir)) == first


def test_a_malformed_tickers_answer_is_an_exchange_error(settings, fake):
    fake.malformed["GET /api/v3/ticker/24hr"] = "<html>not json</html>"
    with pytest.raises(ExchangeError, match="malformed answer|refused tickers"):
        refresh(PairSelector(with_pairs(settings, fake), clock=Now()))
    assert not pairs_file(settings.data_dir).exists()
