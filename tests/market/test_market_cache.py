"""The shared candle cache, its path and the market settings."""

from __future__ import annotations

import pytest

from sorte.config import load_settings
from sorte.errors import ConfigError
from sorte.market import CandleCache
from sorte.paths import candle_cache, market_dir

ROW = [1_700_000_040_000, 1.0, 2.0, 0.5, 1.5, 10.0]


def test_a_candle_written_twice_is_stored_once_with_its_latest_values(tmp_path):
    cache = CandleCache(candle_cache(tmp_path, "binance"))
    cache.put("BTC/USDT", "1m", [ROW])
    cache.put("BTC/USDT", "1m", [[ROW[0], 1.0, 2.5, 0.5, 2.0, 12.0], [ROW[0] + 60_000, *ROW[1:]]])
    cache.put("BTC/USDT", "5m", [ROW])  # another timeframe is another candle
    assert cache.count("BTC/USDT", "1m") == 2
    assert cache.read("BTC/USDT", "1m")[0] == [ROW[0], 1.0, 2.5, 0.5, 2.0, 12.0]
    cache.close()


def test_range_reads_and_persistence_across_reopening(tmp_path):
    path = candle_cache(tmp_path, "binance")
    cache = CandleCache(path)
    cache.put("ETH/USDT", "1m", [[ROW[0] + i * 60_000, *ROW[1:]] for i in range(10)])
    cache.close()  # a new process opens the same file
    again = CandleCache(path)
    assert [r[0] for r in again.read("ETH/USDT", "1m", ROW[0] + 120_000, ROW[0] + 300_000)] == [
        ROW[0] + i * 60_000 for i in range(2, 5)
    ]
    assert [r[0] for r in again.last("ETH/USDT", "1m", 3, ROW[0] + 300_000)] == [ROW[0] + i * 60_000 for i in (2, 3, 4)]
    assert again.read("BTC/USDT", "1m") == []
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_the_cache_lives_under_the_data_dir_and_a_bad_source_is_refused(tmp_path):
    path = candle_cache(tmp_path, "binance")
    assert path == market_dir(tmp_path) / "binance.db" == tmp_path / "market" / "binance.db"
    with pytest.raises(ConfigError, match="invalid market source"):
        candle_cache(tmp_path, "../etc")


def test_market_settings_load_from_the_environment_and_are_checked(settings, monkeypatch):
    monkeypatch.setenv("SORTE_MARKET__STALE_INTERVALS", "5")
    monkeypatch.setenv("SORTE_MARKET__WEBSOCKET", "false")
    loaded = load_settings()
    assert loaded.market.stale_intervals == 5 and loaded.market.websocket is False
    monkeypatch.setenv("SORTE_MARKET__STALE_INTERVALS", "0")
    with pytest.raises(ConfigError, match="market.stale_intervals"):
        load_settings()
    monkeypatch.delenv("SORTE_MARKET__STALE_INTERVALS")
    monkeypatch.setenv("SORTE_MARKET__RECONNECT_BACKOFF_MAX_S", "0.5")
    with pytest.raises(ConfigError, match="reconnect_backoff_max_s must be at least"):
        load_settings()
