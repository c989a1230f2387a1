"""The pair selector's ranking (``sorte.market.pairs.select_pairs``): a pure function of ccxt's
unified tickers and ``market.pairs``. Each filter, the score, ties, empty and malformed input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sorte.config import PairsSettings, Settings
from sorte.errors import ConfigError, DataError
from sorte.market.pairs import PairSelection, human, read_selection, select_pairs, write_selection
from sorte.runtime.ccxt_feed import ExchangeError

# No default filter in the way unless a test sets one: every ticker below passes these.
OPEN: dict[str, Any] = {
    "min_quote_volume": 0,
    "max_spread_pct": None,
    "min_volatility_pct": 0,
    "max_volatility_pct": None,
    "blacklist": [],
}


def pairs(**overrides: Any) -> PairsSettings:
    return PairsSettings(**{**OPEN, **overrides})


def ticker(symbol: str, volume: float = 1e7, rng: float = 10.0, price: float = 100.0, **fields: Any) -> dict[str, Any]:
    """A ccxt unified ticker: 24 h range ``rng`` % of the low, spread 0.02 %."""
    low = price / (1 + rng / 200)
    t = {
        "symbol": symbol,
        "last": price,
        "close": price,
        "bid": price * 0.9998,
        "ask": price,
        "quoteVolume": volume,
        "baseVolume": volume / price,
        "high": low * (1 + rng / 100),
        "low": low,
        "percentage": 1.5,
    }
    t.update(fields)
    return t


def book(*tickers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """As ccxt's fetch_tickers answers: by symbol."""
    return {t["symbol"]: t for t in tickers}


def rejected(selection: PairSelection) -> dict[str, tuple[str, str]]:
    return {r.symbol: (r.filter, r.reason) for r in selection.rejected}


def test_ranks_by_volume_and_volatility_with_the_weights_of_sort_keys():
    tickers = book(
        ticker("A/USDT", volume=4e9, rng=2),
        ticker("B/USDT", volume=3e9, rng=4),
        ticker("C/USDT", volume=2e9, rng=8),
        ticker("D/USDT", volume=1e9, rng=16),
    )
    by_volume = select_pairs(tickers, pairs(sort_keys={"quote_volume": 1}))
    assert by_volume.symbols == ["A/USDT", "B/USDT", "C/USDT", "D/USDT"]
    by_range = select_pairs(tickers, pairs(sort_keys={"volatility": 1}))
    assert by_range.symbols == ["D/USDT", "C/USDT", "B/USDT", "A/USDT"]
    # 0.7 x volume percentile + 0.3 x range percentile, percentiles 0, 1/3, 2/3, 1
    mixed = select_pairs(tickers, pairs(sort_keys={"quote_volume": 0.7, "volatility": 0.3}))
    assert mixed.symbols == ["A/USDT", "B/USDT", "C/USDT", "D/USDT"]
    assert [p.score for p in mixed.selected] == pytest.approx([0.7, 0.7 * 2 / 3 + 0.1, 0.7 / 3 + 0.2, 0.3])
    assert [p.rank for p in mixed.selected] == [1, 2, 3, 4]
    first = mixed.selected[0]
    assert first.quote_volume == 4e9 and first.volatility_pct == pytest.approx(2)
    assert first.price == 100 and first.spread_pct == pytest.approx(0.02)
    assert "volume 4B USDT beats 100 % of the other 3" in first.why
    assert "24 h range 2.0 % beats 0 % of the other 3" in first.why
    assert mixed.tickers == 4 and mixed.eligible == 4 and mixed.rejected == []


def test_the_absolute_24h_change_can_be_a_sort_key():
    tickers = book(ticker("A/USDT", percentage=1), ticker("B/USDT", percentage=-9), ticker("C/USDT", percentage=4))
    assert select_pairs(tickers, pairs(sort_keys={"change": 1})).symbols == ["B/USDT", "C/USDT", "A/USDT"]
    no_change = book(ticker("A/USDT", percentage=None), ticker("B/USDT"))
    s = select_pairs(no_change, pairs(sort_keys={"change": 1}))
    assert s.symbols == ["B/USDT"] and rejected(s)["A/USDT"][0] == "ticker"
    # Not weighed: a missing change does not matter.
    assert select_pairs(no_change, pairs()).symbols == ["A/USDT", "B/USDT"]


def test_number_assets_takes_the_best_and_rejects_the_rest_by_rank():
    tickers = book(*(ticker(f"T{i}/USDT", volume=1e6 * (i + 1)) for i in range(10)))
    s = select_pairs(tickers, pairs(number_assets=3, sort_keys={"quote_volume": 1}))
    assert s.symbols == ["T9/USDT", "T8/USDT", "T7/USDT"]
    assert s.eligible == 10 and len(s.rejected) == 7
    assert {r.filter for r in s.rejected} == {"rank"}
    assert rejected(s)["T6/USDT"][1] == "eligible #4 of 10 (score 0.67), below the 3 taken"


def test_only_the_quote_currency_and_spot_markets():
    tickers = book(
        ticker("BTC/USDT"), ticker("ETH/BTC"), ticker("BTC/USDT:USDT"), ticker("BTCUSDT"), ticker("SOL/usdt")
    )
    s = select_pairs(tickers, pairs())
    assert s.symbols == ["BTC/USDT", "SOL/usdt"]
    why = rejected(s)
    assert why["ETH/BTC"] == ("quote", "quoted in BTC, not USDT")
    assert why["BTC/USDT:USDT"][0] == "market" and "derivative" in why["BTC/USDT:USDT"][1]
    assert why["BTCUSDT"] == ("ticker", "symbol 'BTCUSDT' is not BASE/QUOTE")
    assert select_pairs(tickers, pairs(quote="btc")).symbols == ["ETH/BTC"]


def test_the_exchange_markets_refuse_unlisted_inactive_and_non_spot_ones():
    tickers = book(ticker("A/USDT"), ticker("B/USDT"), ticker("C/USDT"), ticker("D/USDT"))
    markets = {
        "A/USDT": {"spot": True, "active": True},
        "B/USDT": {"spot": True, "active": False},
        "C/USDT": {"spot": False, "active": True},
    }
    s = select_pairs(tickers, pairs(), markets=markets)
    assert s.symbols == ["A/USDT"]
    assert rejected(s) == {
        "B/USDT": ("market", "the market is not trading (inactive)"),
        "C/USDT": ("market", "not a listed spot market"),
        "D/USDT": ("market", "not a listed spot market"),
    }


@pytest.mark.parametrize(
    ("patterns", "refused"),
    [
        (["BNB/*"], {"BNB/USDT"}),
        (["bnb/*"], {"BNB/USDT"}),  # case-insensitive
        (["*DOWN/*", "*UP/*"], {"BTCDOWN/USDT", "ETHUP/USDT", "JUP/USDT"}),  # a glob: JUP ends in UP too
        (["*DOWN/*", "?*UP/*"], {"BTCDOWN/USDT", "ETHUP/USDT", "JUP/USDT"}),
        (["*DOWN/*", "???UP/*"], {"BTCDOWN/USDT", "ETHUP/USDT"}),
        (["?TC/USDT"], {"BTC/USDT"}),
        (["[BE]*/USDT"], {"BNB/USDT", "BTC/USDT", "BTCDOWN/USDT", "ETHUP/USDT"}),
        (["SOL/USDT"], set()),  # exact names too: nothing matches this one
        ([], set()),
    ],
)
def test_the_blacklist_takes_glob_patterns(patterns, refused):
    names = ["BNB/USDT", "BTC/USDT", "BTCDOWN/USDT", "ETHUP/USDT", "JUP/USDT"]
    s = select_pairs(book(*(ticker(n) for n in names)), pairs(blacklist=patterns))
    assert {r.symbol for r in s.rejected} == refused
    assert all(r.filter == "blacklist" and "blacklist pattern" in r.reason for r in s.rejected)
    assert set(s.symbols) == set(names) - refused


def test_the_default_blacklist_leaves_out_stablecoin_pairs():
    s = select_pairs(book(ticker("USDC/USDT"), ticker("FDUSD/USDT"), ticker("BTC/USDT")), PairsSettings())
    assert rejected(s)["USDC/USDT"] == ("blacklist", "matches the blacklist pattern 'USDC/*'")
    assert rejected(s)["FDUSD/USDT"][0] == "blacklist"


def test_min_price():
    s = select_pairs(book(ticker("A/USDT", price=0.0004), ticker("B/USDT", price=0.002)), pairs(min_price=0.001))
    assert s.symbols == ["B/USDT"]
    assert rejected(s)["A/USDT"] == ("min_price", "price 0.0004 < 0.001")


def test_max_spread():
    tickers = book(
        ticker("A/USDT", bid=99.0, ask=100.0),  # 1 %
        ticker("B/USDT", bid=99.8, ask=100.0),  # 0.2 %
        ticker("C/USDT", bid=None, ask=None),
        ticker("D/USDT", bid=101.0, ask=100.0),  # crossed: unusable
    )
    s = select_pairs(tickers, pairs(max_spread_pct=0.5))
    assert s.symbols == ["B/USDT"]
    assert s.selected[0].spread_pct == pytest.approx(0.2)
    why = rejected(s)
    assert why["A/USDT"] == ("max_spread", "spread 1 % > 0.5 %")
    assert why["C/USDT"][0] == "ticker" and "bid/ask" in why["C/USDT"][1]
    assert why["D/USDT"][0] == "ticker"
    # Without the filter a missing bid/ask is no reason to refuse: the spread is just unknown.
    open_spread = select_pairs(tickers, pairs())
    assert len(open_spread.selected) == 4
    assert {p.symbol: p.spread_pct for p in open_spread.selected}["C/USDT"] is None


def test_min_quote_volume_and_a_volume_derived_from_the_base_volume():
    tickers = book(
        ticker("A/USDT", volume=2e6),
        ticker("B/USDT", volume=5e5),
        ticker("C/USDT", quoteVolume=None, baseVolume=30_000.0),  # x 100 = 3M
        ticker("D/USDT", quoteVolume=None, baseVolume=None),
    )
    s = select_pairs(tickers, pairs(min_quote_volume=1e6, sort_keys={"quote_volume": 1}))
    assert s.symbols == ["C/USDT", "A/USDT"]
    assert s.selected[0].quote_volume == pytest.approx(3e6)
    assert "(base volume × last)" in s.selected[0].why
    why = rejected(s)
    assert why["B/USDT"] == ("min_quote_volume", "24 h volume 500k USDT < 1M")
    assert why["D/USDT"] == ("ticker", "no 24 h volume (quoteVolume and baseVolume missing)")


def test_volatility_range_bounds():
    tickers = book(ticker("CALM/USDT", rng=0.3), ticker("OK/USDT", rng=6), ticker("WILD/USDT", rng=80))
    s = select_pairs(tickers, pairs(min_volatility_pct=1, max_volatility_pct=50))
    assert s.symbols == ["OK/USDT"]
    assert s.selected[0].volatility_pct == pytest.approx(6)
    why = rejected(s)
    assert why["CALM/USDT"] == ("volatility", "24 h range 0.3 % < 1 %")
    assert why["WILD/USDT"] == ("volatility", "24 h range 80 % > 50 %")


def test_volatility_from_cached_candles():
    def candles(symbol: str, n: int) -> list[list[float]]:
        if symbol == "NEW/USDT":
            return [[0, 10, 11, 9, 10, 1]]
        # high 120 and low 100 over the window: a 20 % range whatever the ticker says
        return [[i * 60_000, 100, 100 + i * 20 / (n - 1), 100, 100, 1] for i in range(n)]

    tickers = book(ticker("A/USDT", rng=2), ticker("NEW/USDT"))
    s = select_pairs(tickers, pairs(volatility_lookback_bars=30, max_volatility_pct=50), candles=candles)
    assert s.symbols == ["A/USDT"]
    assert s.selected[0].volatility_pct == pytest.approx(20)
    assert "range of the last 30 candles 20.0 %" in s.selected[0].why
    assert rejected(s)["NEW/USDT"] == ("volatility", "1 cached candles, the volatility lookback needs 30")
    with pytest.raises(ConfigError, match="volatility_lookback_bars needs the candle cache"):
        select_pairs(tickers, pairs(volatility_lookback_bars=30))


def test_min_history_is_checked_best_first_and_only_as_far_as_needed():
    counts = {"A/USDT": 500, "B/USDT": 20, "C/USDT": 300, "D/USDT": 1000, "E/USDT": 1000}
    asked: list[str] = []

    def history(symbol: str) -> int:
        asked.append(symbol)
        if symbol == "C/USDT":
            raise DataError("unknown symbol on binance")
        return counts[symbol]

    tickers = book(*(ticker(sym, volume=1e9 - i * 1e6) for i, sym in enumerate(counts)))
    s = select_pairs(
        tickers, pairs(number_assets=2, min_history_bars=200, sort_keys={"quote_volume": 1}), history=history
    )
    assert s.symbols == ["A/USDT", "D/USDT"]
    assert [p.history_bars for p in s.selected] == [500, 1000]
    assert "500 candles" in s.selected[0].why
    assert asked == ["A/USDT", "B/USDT", "C/USDT", "D/USDT"]  # E was never needed
    why = rejected(s)
    assert why["B/USDT"] == ("min_history", "20 candles known, needs 200")
    assert why["C/USDT"] == ("min_history", "candle history unknown: unknown symbol on binance")
    assert why["E/USDT"][0] == "rank"
    with pytest.raises(ConfigError, match="min_history_bars needs a candle count"):
        select_pairs(tickers, pairs(min_history_bars=200))


def test_an_unreachable_exchange_while_counting_history_is_no_selection_not_an_empty_one():
    def history(symbol: str) -> int:
        raise ExchangeError("exchange binance is unreachable")

    with pytest.raises(ExchangeError):
        select_pairs(book(ticker("A/USDT")), pairs(min_history_bars=10), history=history)


def test_ties_go_to_the_larger_volume_then_to_the_symbol():
    same = book(ticker("C/USDT"), ticker("A/USDT"), ticker("B/USDT"))
    s = select_pairs(same, pairs())
    assert s.symbols == ["A/USDT", "B/USDT", "C/USDT"]
    assert {p.score for p in s.selected} == {0.5}  # equal values share their mean percentile
    # Equal scores (one is first by volume, the other by range): the volume decides.
    swapped = book(ticker("X/USDT", volume=2e6, rng=3), ticker("Y/USDT", volume=1e6, rng=6))
    s = select_pairs(swapped, pairs(sort_keys={"quote_volume": 1, "volatility": 1}))
    assert [p.score for p in s.selected] == [0.5, 0.5]
    assert s.symbols == ["X/USDT", "Y/USDT"]
    # The order of the input does not matter.
    assert select_pairs(dict(reversed(list(same.items()))), pairs()).symbols == ["A/USDT", "B/USDT", "C/USDT"]


def test_empty_input():
    for empty in ({}, []):
        s = select_pairs(empty, PairsSettings(), at=1.0, source="binance")
        assert s.selected == [] and s.rejected == [] and s.tickers == 0 and s.eligible == 0
        assert s.at == 1.0 and s.source == "binance"
    one = select_pairs(book(ticker("A/USDT")), pairs())
    assert one.selected[0].score == 1.0 and "the only pair that passed" in one.selected[0].why


@pytest.mark.parametrize(
    ("fields", "filter", "reason"),
    [
        ({"last": None, "close": None}, "ticker", "no last price"),
        ({"last": "abc", "close": None}, "ticker", "no last price"),
        ({"last": float("nan"), "close": None}, "ticker", "no last price"),
        ({"last": 0, "close": 0}, "ticker", "no last price"),
        ({"last": True, "close": None}, "ticker", "no last price"),
        ({"quoteVolume": None, "baseVolume": "n/a"}, "ticker", "no 24 h volume"),
        ({"quoteVolume": -5.0}, "ticker", "negative 24 h volume"),
        ({"high": None}, "ticker", "no 24 h high/low"),
        ({"low": float("inf")}, "ticker", "no 24 h high/low"),
        ({"high": 90.0, "low": 95.0}, "ticker", "inconsistent high/low"),
        ({"high": 5.0, "low": 0.0}, "ticker", "inconsistent high/low"),
    ],
)
def test_a_malformed_ticker_is_refused_with_a_reason(fields, filter, reason):
    s = select_pairs(book(ticker("BAD/USDT", **fields), ticker("OK/USDT")), pairs())
    assert s.symbols == ["OK/USDT"]
    assert rejected(s)["BAD/USDT"][0] == filter and reason in rejected(s)["BAD/USDT"][1]


def test_tickers_without_a_symbol_or_that_are_not_tickers():
    tickers: dict[str, Any] = {"A/USDT": None, "B/USDT": {"last": 1}, "C/USDT": "oops", "OK/USDT": ticker("OK/USDT")}
    s = select_pairs(tickers, pairs())
    assert s.symbols == ["OK/USDT"]
    why = rejected(s)
    assert why["A/USDT"] == ("ticker", "not a ticker: None")
    assert why["B/USDT"] == ("ticker", "no symbol in the ticker")
    assert why["C/USDT"][0] == "ticker"
    as_list = select_pairs([{"last": 1}, 7, ticker("OK/USDT")], pairs())
    assert as_list.symbols == ["OK/USDT"] and [r.symbol for r in as_list.rejected] == ["?", "?"]


def test_the_first_failing_filter_is_the_one_recorded():
    # quote comes before the blacklist, which comes before the volume
    s = select_pairs(book(ticker("BNB/BTC", volume=1), ticker("BNB/USDT", volume=1)), pairs(blacklist=["BNB/*"]))
    assert rejected(s) == {
        "BNB/BTC": ("quote", "quoted in BTC, not USDT"),
        "BNB/USDT": ("blacklist", "matches the blacklist pattern 'BNB/*'"),
    }
    assert s.rejected_by() == {"quote": 1, "blacklist": 1}


number = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-6, max_value=1e9),
    st.text(max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "symbol": st.one_of(st.none(), st.sampled_from(["A/USDT", "B/USDT", "C/BTC", "D/USDT", "E/USDT:USDT"])),
                "last": number,
                "bid": number,
                "ask": number,
                "quoteVolume": number,
                "baseVolume": number,
                "high": number,
                "low": number,
                "percentage": number,
            }
        ),
        max_size=12,
    ),
    st.integers(min_value=1, max_value=5),
)
def test_any_ticker_list_gives_a_consistent_selection(tickers, n):
    s = select_pairs(
        tickers, PairsSettings(number_assets=n, min_quote_volume=0, sort_keys={"quote_volume": 1, "change": 1})
    )
    assert len(s.selected) + len(s.rejected) == len(tickers) == s.tickers
    assert len(s.selected) <= n and [p.rank for p in s.selected] == list(range(1, len(s.selected) + 1))
    assert all(0 <= p.score <= 1 and math.isfinite(p.volatility_pct) for p in s.selected)
    assert [p.score for p in s.selected] == sorted((p.score for p in s.selected), reverse=True)
    assert all(r.reason for r in s.rejected)


def test_two_thousand_tickers_are_ranked():
    # The < 1 s target is bench/pairs_select.py's to measure, not a unit test's to assert.
    tickers = book(*(ticker(f"S{i}/USDT", volume=1e6 + i * 7919 % 2000 * 1e5, rng=1 + i % 40) for i in range(2000)))
    s = select_pairs(tickers, PairsSettings())
    assert len(s.selected) == 20 and s.tickers == 2000 and s.took_s > 0


def test_the_selection_is_saved_and_read_back(tmp_path):
    s = select_pairs(book(ticker("A/USDT"), ticker("B/BTC")), PairsSettings(min_quote_volume=0), at=123.0)
    path = tmp_path / "market" / "pairs.json"
    write_selection(path, s)
    assert read_selection(path) == s
    assert read_selection(tmp_path / "none.json") is None
    path.write_text("{not json")
    with pytest.raises(DataError, match="malformed.*sorte pairs --refresh"):
        read_selection(path)
    (tmp_path / "blocked").write_text("a file where the folder should be")
    with pytest.raises(DataError, match="cannot be saved"):
        write_selection(tmp_path / "blocked" / "pairs.json", s)


def test_settings_are_checked_and_come_from_the_environment(monkeypatch, tmp_path):
    with pytest.raises(ValidationError, match="sort_keys needs weights"):
        PairsSettings(sort_keys={"quote_volume": 0})
    with pytest.raises(ValidationError, match="max_volatility_pct must be at least"):
        PairsSettings(min_volatility_pct=10, max_volatility_pct=5)
    with pytest.raises(ValidationError):
        PairsSettings(sort_keys={"liquidity": 1})
    with pytest.raises(ValidationError):
        PairsSettings(number_asset=3)  # a typo is an error
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SORTE_MARKET__PAIRS__ENABLED", "true")
    monkeypatch.setenv("SORTE_MARKET__PAIRS__QUOTE", "btc")
    monkeypatch.setenv("SORTE_MARKET__PAIRS__BLACKLIST", '["BNB/*"]')
    monkeypatch.setenv("SORTE_MARKET__PAIRS__SORT_KEYS", '{"volatility": 1}')
    p = Settings().market.pairs
    assert p.enabled and p.quote == "BTC" and p.blacklist == ["BNB/*"] and p.sort_keys == {"volatility": 1}


def test_human_volumes():
    assert [human(v) for v in (12.0, 4_500.0, 12_300_000.0, 1.2e9)] == ["12", "4.5k", "12.3M", "1.2B"]
