"""The start-up line of `sorte up` says what is traded: with pair selection on, the saved
selection (what the commander starts from), not runtime.symbols."""

from __future__ import annotations

from pathlib import Path

import pytest

from sorte.cli.feed_options import describe_feed
from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.market.pairs import select_pairs, write_selection
from sorte.paths import pairs_file
from sorte.settings.market import PairsSettings


def settings(tmp_path: Path, **runtime: object) -> Settings:
    return Settings(data_dir=tmp_path / "var", runtime=runtime)


def selecting(s: Settings) -> Settings:
    pairs = s.market.pairs.model_copy(update={"enabled": True, "refresh_s": 900.0})
    return s.model_copy(update={"market": s.market.model_copy(update={"pairs": pairs})})


def test_a_replay_and_a_fixed_list() -> None:
    assert describe_feed(Settings()) == "paper trading on the replay feed"
    s = Settings(runtime={"feed": "ccxt", "symbols": ["BTC/USDT", "ETH/USDT"]})
    assert describe_feed(s) == "paper trading on binance 1m candles of BTC/USDT, ETH/USDT"


def test_with_pair_selection_it_names_the_saved_selection_not_the_config_list(tmp_path: Path) -> None:
    s = selecting(settings(tmp_path, feed="ccxt", symbols=["BTC/USDT"]))
    assert "candles of the selected pairs (now BTC/USDT; refreshed every 900 s)" in describe_feed(s)
    ticker = {"last": 10.0, "close": 10.0, "high": 11.0, "low": 9.0, "bid": 9.99, "ask": 10.0}
    volumes = {"SOL/USDT": 9e6, "XRP/USDT": 8e6}
    tickers = {sym: {**ticker, "symbol": sym, "quoteVolume": vol} for sym, vol in volumes.items()}
    saved = select_pairs(tickers, PairsSettings(min_quote_volume=0, min_volatility_pct=0, blacklist=[]))
    assert saved.symbols == ["SOL/USDT", "XRP/USDT"]
    write_selection(pairs_file(s.data_dir), saved.model_copy(update={"source": "binance"}))
    assert "candles of the selected pairs (now SOL/USDT, XRP/USDT; refreshed every 900 s)" in describe_feed(s)


def test_with_pair_selection_and_nothing_to_start_from_it_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sorte pairs --refresh"):
        describe_feed(selecting(settings(tmp_path, feed="ccxt", symbols=[])))
