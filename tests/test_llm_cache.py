from __future__ import annotations

import time

import pytest

from sorte.llm.cache import ResponseCache, cache_key

MSGS = [{"role": "user", "content": "score BTC"}]


def key(n: int = 0, **kw) -> str:
    args = {"provider": "ollama", "model": "m", "messages": MSGS, "params": {"t": 0}, "schema": {"a": n}} | kw
    return cache_key(**args)


def test_key_covers_provider_model_messages_params_and_schema():
    base = key()
    assert key() == base
    assert (
        len(
            {
                base,
                key(provider="openai"),
                key(model="n"),
                key(params={"t": 1}),
                key(1),
                key(messages=[{"role": "user", "content": "score ETH"}]),
            }
        )
        == 6
    )


def test_memory_then_disk_levels_and_restart(tmp_path):
    path = tmp_path / "cache.db"
    cache = ResponseCache(path)
    assert cache.get(key()) is None
    cache.put(key(), '{"x": 1}')
    assert cache.get(key()) == ('{"x": 1}', "memory")
    cache.close()
    reopened = ResponseCache(path)  # survives a restart, first from disk then promoted
    assert reopened.get(key()) == ('{"x": 1}', "disk")
    assert reopened.get(key()) == ('{"x": 1}', "memory")
    stats = reopened.stats()
    assert (stats.memory_hits, stats.disk_hits, stats.misses) == (1, 1, 0)
    assert stats.hit_rate == 1.0 and stats.disk_entries == 1 and stats.disk_bytes > 0


def test_ttl_expires_entries(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path / "c.db")
    now = time.time()
    cache.put(key(), "short", "fast", ttl_s=10)
    cache.put(key(1), "forever", "fast", ttl_s=0)
    monkeypatch.setattr(time, "time", lambda: now + 11)
    assert cache.get(key()) is None
    assert cache.get(key(1)) == ("forever", "memory")


def test_memory_level_is_lru_bounded():
    cache = ResponseCache(None, max_entries=3)
    for n in range(3):
        cache.put(key(n), str(n))
    cache.get(key(0))  # 0 becomes most recently used
    cache.put(key(3), "3")
    assert cache.get(key(1)) is None
    assert cache.get(key(0)) is not None and cache.get(key(3)) is not None
    assert cache.stats().evictions == 1 and cache.stats().memory_entries == 3


def test_disk_level_is_byte_bounded_oldest_out(tmp_path):
    cache = ResponseCache(tmp_path / "c.db", max_entries=1, max_disk_bytes=2_000)
    for n in range(40):
        cache.put(key(n), "x" * 100)
    stats = cache.stats()
    assert stats.disk_bytes <= 2_000 and stats.disk_entries < 40
    assert cache.get(key(39)) is not None  # newest kept
    assert cache.get(key(0)) is None  # oldest evicted


def test_stats_report_latency_percentiles():
    cache = ResponseCache(None)
    cache.put(key(), "v")
    for _ in range(100):
        cache.get(key())
    stats = cache.stats()
    assert 0 < stats.lookup_p50_us <= stats.lookup_p99_us
    assert stats.hit_rate == pytest.approx(1.0)
