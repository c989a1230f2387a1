"""Two-level response cache for LLM answers: an in-process LRU, then SQLite on disk.

Keys hash (provider, model, messages, params, schema), so the same question to the same
model is answered once and a backtest with LLM stages can be replayed for free. Entries
carry an expiry (TTL per role; 0 = never expires). The memory level is bounded by entry
count (least recently used out first); the disk level by bytes (oldest written out first,
so a hit never costs a disk write).

Statistics: the counters of this process (what the Prometheus metrics show), and cumulative
ones kept in the same SQLite file (table ``stats``) that survive restarts and add up over
every process sharing the store (what ``sorte doctor`` shows). The cumulative counters are
written in batches (every ``STATS_FLUSH_EVERY`` lookups, every ``STATS_FLUSH_S`` seconds
at the next lookup, and on close), as increments, so a hit costs no disk write and two
processes never overwrite each other's counts.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, role TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers(created);
CREATE TABLE IF NOT EXISTS stats (
    id INTEGER PRIMARY KEY CHECK (id = 1), since REAL NOT NULL,
    memory_hits INTEGER NOT NULL DEFAULT 0, disk_hits INTEGER NOT NULL DEFAULT 0, misses INTEGER NOT NULL DEFAULT 0
);
"""
LATENCY_WINDOW = 10_000
STATS_FLUSH_EVERY = 1_000
STATS_FLUSH_S = 30.0


def cache_key(
    provider: str, model: str, messages: list[dict[str, str]], params: dict[str, Any], schema: dict[str, Any] | None
) -> str:
    blob = json.dumps([provider, model, messages, params, schema], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class CacheStats(BaseModel):
    memory_hits: int
    disk_hits: int
    misses: int
    hit_rate: float
    memory_entries: int
    disk_entries: int
    disk_bytes: int
    lookup_p50_us: float
    lookup_p99_us: float
    evictions: int
    # Cumulative over every process that used this store (restarts included), since ``since``
    # (epoch seconds; None without a disk level, where they equal this process's counters).
    total_memory_hits: int = 0
    total_disk_hits: int = 0
    total_misses: int = 0
    total_hit_rate: float = 0.0
    since: float | None = None


class LookupTiming(BaseModel):
    """Lookup latency measured by :meth:`ResponseCache.self_test` over stored entries."""

    entries: int  # entries looked up (each once per level)
    disk_p50_us: float | None
    disk_p99_us: float | None
    memory_p50_us: float | None
    memory_p99_us: float | None


class ResponseCache:
    def __init__(
        self,
        path: Path | None,
        max_entries: int = 10_000,
        max_disk_bytes: int = 256 * 2**20,
        ttl_s: dict[str, float] | None = None,
    ) -> None:
        self.max_entries, self.max_disk_bytes = max_entries, max_disk_bytes
        self.ttl_s = ttl_s or {}
        self._mem: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.memory_hits = self.disk_hits = self.misses = self.evictions = 0
        self._flushed = (0, 0, 0)  # (memory hits, disk hits, misses) already added to the stats table
        self._unflushed_lookups = 0
        self._flush_every = STATS_FLUSH_EVERY
        self._last_flush = time.time()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO stats (id, since) VALUES (1, ?)", (time.time(),))
            self._disk_bytes = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._flush_stats()
                self._db.close()
                self._db = None

    def get(self, key: str) -> tuple[str, str] | None:
        """The cached answer and the level it came from ("memory" or "disk"), or None.
        One lookup in the statistics."""
        t0 = time.perf_counter()
        now = time.time()
        with self._lock:
            found = self._get_memory(key, now) or self._get_disk(key, now)
            if found is None:
                self.misses += 1
            self._unflushed_lookups += 1
            if self._unflushed_lookups >= self._flush_every or now - self._last_flush >= STATS_FLUSH_S:
                self._flush_stats(now)
        self._latency.append(time.perf_counter() - t0)
        return found

    def lookup(self, keys: list[str]) -> tuple[str, str, int] | None:
        """The first of ``keys`` that is cached: (answer, level, its index in ``keys``), or
        None. One lookup in the statistics however many keys (the answer of any target of a
        fallback chain will do): a hit if one is cached, else one miss."""
        t0 = time.perf_counter()
        now = time.time()
        with self._lock:
            found = None
            for i, key in enumerate(keys):
                hit = self._get_memory(key, now) or self._get_disk(key, now)
                if hit is not None:
                    found = (hit[0], hit[1], i)
                    break
            else:
                self.misses += 1
            self._unflushed_lookups += 1
            if self._unflushed_lookups >= self._flush_every or now - self._last_flush >= STATS_FLUSH_S:
                self._flush_stats(now)
        self._latency.append(time.perf_counter() - t0)
        return found

    def _flush_stats(self, now: float | None = None) -> None:
        """Add this process's counts since the last flush to the cumulative ones on disk."""
        self._unflushed_lookups = 0
        self._last_flush = time.time() if now is None else now
        counts = (self.memory_hits, self.disk_hits, self.misses)
        delta = tuple(c - f for c, f in zip(counts, self._flushed, strict=True))
        if self._db is None or not any(delta):
            return
        self._db.execute(
            "UPDATE stats SET memory_hits = memory_hits + ?, disk_hits = disk_hits + ?, misses = misses + ? "
            "WHERE id = 1",
            delta,
        )
        self._flushed = counts

    def flush_stats(self) -> None:
        with self._lock:
            self._flush_stats()

    def _get_memory(self, key: str, now: float) -> tuple[str, str] | None:
        entry = self._mem.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires and expires < now:
            del self._mem[key]
            return None
        self._mem.move_to_end(key)
        self.memory_hits += 1
        return value, "memory"

    def _get_disk(self, key: str, now: float) -> tuple[str, str] | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT value, expires FROM answers WHERE key=?", (key,)).fetchone()
        if row is None or (row[1] and row[1] < now):
            return None
        self._remember(key, row[0], row[1])
        self.disk_hits += 1
        return row[0], "disk"

    def put(self, key: str, value: str, role: str = "", ttl_s: float = 0.0) -> None:
        """Store an answer; ``ttl_s`` 0 keeps it until evicted."""
        ttl = ttl_s
        now = time.time()
        expires = now + ttl if ttl else 0.0
        with self._lock:
            self._remember(key, value, expires)
            if self._db is not None:
                size = len(value.encode()) + len(key)
                old = self._db.execute("SELECT size FROM answers WHERE key=?", (key,)).fetchone()
                self._db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?)", (key, value, role, now, expires, size)
                )
                self._disk_bytes += size - (old[0] if old else 0)
                if self._disk_bytes > self.max_disk_bytes:
                    self._evict_disk()

    def _remember(self, key: str, value: str, expires: float) -> None:
        self._mem[key] = (value, expires)
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)
            self.evictions += 1

    def _evict_disk(self) -> None:
        assert self._db is not None
        target = int(self.max_disk_bytes * 0.9)  # evict in chunks, not one row per put
        rows = self._db.execute("SELECT key, size FROM answers ORDER BY created").fetchall()
        doomed = []
        for key, size in rows:
            if self._disk_bytes <= target:
                break
            doomed.append((key,))
            self._disk_bytes -= size
        self._db.executemany("DELETE FROM answers WHERE key=?", doomed)
        self.evictions += len(doomed)

    def stats(self) -> CacheStats:
        with self._lock:
            lat = np.array(self._latency) * 1e6 if self._latency else np.zeros(1)
            hits = self.memory_hits + self.disk_hits
            total = hits + self.misses
            disk_entries = self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] if self._db is not None else 0
            totals = (self.memory_hits, self.disk_hits, self.misses)
            since = None
            if self._db is not None:
                row = self._db.execute("SELECT since, memory_hits, disk_hits, misses FROM stats").fetchone()
                since = row[0]
                # on disk: every flushed count (of any process); plus this process's unflushed ones
                totals = tuple(d + c - f for d, c, f in zip(row[1:], totals, self._flushed, strict=True))
            total_hits = totals[0] + totals[1]
            return CacheStats(
                memory_hits=self.memory_hits,
                disk_hits=self.disk_hits,
                misses=self.misses,
                hit_rate=hits / total if total else 0.0,
                memory_entries=len(self._mem),
                disk_entries=disk_entries,
                disk_bytes=self._disk_bytes if self._db is not None else 0,
                lookup_p50_us=float(np.percentile(lat, 50)),
                lookup_p99_us=float(np.percentile(lat, 99)),
                evictions=self.evictions,
                total_memory_hits=totals[0],
                total_disk_hits=totals[1],
                total_misses=totals[2],
                total_hit_rate=total_hits / (total_hits + totals[2]) if total_hits + totals[2] else 0.0,
                since=since,
            )

    def self_test(self, entries: int = 200) -> LookupTiming | None:
        """Lookup latency over up to ``entries`` stored answers: each looked up once from the
        disk store and once from memory (not counted in the statistics). None when there is
        nothing stored on disk."""
        if self._db is None:
            return None
        now = time.time()
        with self._lock:
            keys = [
                k
                for (k,) in self._db.execute(
                    "SELECT key FROM answers WHERE expires = 0 OR expires >= ? ORDER BY RANDOM() LIMIT ?",
                    (now, entries),
                )
            ]
        if not keys:
            return None
        lat: dict[str, list[float]] = {"memory": [], "disk": []}
        clock = time.perf_counter
        for key in keys:
            with self._lock:
                self._mem.pop(key, None)  # the first lookup reads the disk store
            for _ in range(2):
                t0 = clock()
                with self._lock:
                    found = self._get_memory(key, now) or self._get_disk(key, now)
                took = clock() - t0
                if found is not None:
                    lat[found[1]].append(took)
        with self._lock:  # the self-test's hits are not the store's: uncount them
            self.memory_hits -= len(lat["memory"])
            self.disk_hits -= len(lat["disk"])

        def pct(level: str, q: float) -> float | None:
            return round(float(np.percentile(np.array(lat[level]) * 1e6, q)), 2) if lat[level] else None

        return LookupTiming(
            entries=len(keys),
            disk_p50_us=pct("disk", 50),
            disk_p99_us=pct("disk", 99),
            memory_p50_us=pct("memory", 50),
            memory_p99_us=pct("memory", 99),
        )
