"""The shared on-disk candle cache: one SQLite file per source under the data dir.

Only closed candles are written. A candle is keyed by (symbol, timeframe, open time), so one
written twice (a backfill overlapping the stream, a restart refetching) is stored once, with
the latest values. WAL with ``synchronous=NORMAL``: a commit survives a crash of the process
(not always one of the machine, which costs an fsync per candle on the path to the decisions);
readers (a status page, a second slot) never block the writer. What a machine crash loses is
refetched: the candles after the ledger's cursor come from REST on a resume, and a lookback
with holes is prefetched again from its first missing candle.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from sorte.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    open_ms INTEGER NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    PRIMARY KEY (symbol, timeframe, open_ms)
) WITHOUT ROWID
"""
UPSERT = """
INSERT INTO candles (symbol, timeframe, open_ms, open, high, low, close, volume)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (symbol, timeframe, open_ms) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low,
    close = excluded.close, volume = excluded.volume
"""

Row = list[float]  # [open_ms, open, high, low, close, volume], ccxt's candle layout


class CandleCache:
    """Closed candles of one source, read and written by range."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"candle cache {self.path} cannot be opened: {exc}") from None
        self._lock = threading.Lock()  # one connection, shared by the collector's threads of control

    def close(self) -> None:
        self.db.close()

    def put(self, symbol: str, timeframe: str, rows: Iterable[Sequence[float]]) -> int:
        """Upsert closed candles in one transaction; returns how many were given."""
        values = [(symbol, timeframe, int(r[0]), *map(float, r[1:6])) for r in rows]
        if not values:
            return 0
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(UPSERT, values)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        return len(values)

    def read(self, symbol: str, timeframe: str, start_ms: int | None = None, end_ms: int | None = None) -> list[Row]:
        """Candles with ``start_ms <= open < end_ms`` (either bound may be open), oldest first."""
        query = "SELECT open_ms, open, high, low, close, volume FROM candles WHERE symbol = ? AND timeframe = ?"
        args: list[object] = [symbol, timeframe]
        if start_ms is not None:
            query += " AND open_ms >= ?"
            args.append(int(start_ms))
        if end_ms is not None:
            query += " AND open_ms < ?"
            args.append(int(end_ms))
        with self._lock:
            rows = self.db.execute(query + " ORDER BY open_ms", args).fetchall()
        return [[float(v) for v in row] for row in rows]

    def last(self, symbol: str, timeframe: str, n: int, end_ms: int | None = None) -> list[Row]:
        """The ``n`` newest candles opened before ``end_ms`` (all, if None), oldest first."""
        query = "SELECT open_ms, open, high, low, close, volume FROM candles WHERE symbol = ? AND timeframe = ?"
        args: list[object] = [symbol, timeframe]
        if end_ms is not None:
            query += " AND open_ms < ?"
            args.append(int(end_ms))
        with self._lock:
            rows = self.db.execute(query + " ORDER BY open_ms DESC LIMIT ?", [*args, max(0, n)]).fetchall()
        return [[float(v) for v in row] for row in reversed(rows)]

    def count(self, symbol: str, timeframe: str) -> int:
        with self._lock:
            (n,) = self.db.execute(
                "SELECT COUNT(*) FROM candles WHERE symbol = ? AND timeframe = ?", (symbol, timeframe)
            ).fetchone()
        return int(n)
