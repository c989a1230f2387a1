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


def test_lookup_of_several_keys_is_one_lookup():
    cache = ResponseCache(None)
    cache.put(key(1), "b")
    assert cache.lookup([key(0), key(1)]) == ("b", "memory", 1)
    assert cache.lookup([key(2), key(3)]) is None
    stats = cache.stats()
    assert (stats.memory_hits, stats.misses, stats.hit_rate) == (1, 1, 0.5)


def test_cumulative_stats_survive_restarts_and_add_up(tmp_path):
    path = tmp_path / "cache.db"
    first = ResponseCache(path)
    first.get(key())  # miss
    first.put(key(), "v")
    first.get(key())  # memory hit
    first.close()
    second = ResponseCache(path)
    assert second.get(key()) == ("v", "disk")
    assert second.get(key(9)) is None
    stats = second.stats()
    assert (stats.memory_hits, stats.disk_hits, stats.misses) == (0, 1, 1)  # this process (Prometheus)
    assert (stats.total_memory_hits, stats.total_disk_hits, stats.total_misses) == (1, 1, 2)
    assert stats.total_hit_rate == 0.5 and stats.since is not None
    second.close()
    third = ResponseCache(path)  # what a fresh process (sorte doctor) sees
    again = third.stats()
    assert (again.total_memory_hits, again.total_disk_hits, again.total_misses) == (1, 1, 2)
    assert again.since == stats.since and (again.memory_hits, again.misses) == (0, 0)


def test_cumulative_stats_are_written_in_batches_not_per_lookup(tmp_path, monkeypatch):
    import sorte.llm.cache as cache_mod

    monkeypatch.setattr(cache_mod, "STATS_FLUSH_EVERY", 5)
    path = tmp_path / "cache.db"
    writer = ResponseCache(path)
    writer.put(key(), "v")

    def on_disk() -> int:
        reader = ResponseCache(path)
        try:
            s = reader.stats()
            return s.total_memory_hits + s.total_disk_hits + s.total_misses
        finally:
            reader.close()

    for _ in range(4):
        writer.get(key())
    assert on_disk() == 0  # nothing written yet
    assert writer.stats().total_memory_hits == 4  # this process's own view includes the unflushed ones
    writer.get(key())
    assert on_disk() == 5  # the fifth lookup flushed the batch
    writer.get(key(1))
    writer.close()  # and close flushes the rest
    assert on_disk() == 6


def test_two_processes_add_to_the_same_counters(tmp_path):
    path = tmp_path / "cache.db"
    a, b = ResponseCache(path), ResponseCache(path)
    a.get(key())
    b.get(key())
    b.get(key(1))
    a.close()
    b.close()
    assert ResponseCache(path).stats().total_misses == 3


def test_self_test_times_stored_entries_without_counting_them(tmp_path):
    path = tmp_path / "cache.db"
    empty = ResponseCache(path)
    assert empty.self_test() is None  # no entries
    assert ResponseCache(None).self_test() is None  # no disk level
    for n in range(30):
        empty.put(key(n), "v")
    empty.close()
    cache = ResponseCache(path)
    timing = cache.self_test(entries=20)
    assert timing is not None and timing.entries == 20
    assert 0 < timing.disk_p50_us <= timing.disk_p99_us
    assert 0 < timing.memory_p50_us <= timing.memory_p99_us
    stats = cache.stats()
    assert stats.total_memory_hits + stats.total_disk_hits + stats.total_misses == 0
