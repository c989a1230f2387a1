"""The gateway's own record of the account (SQLite, ``<commander dir>/orders.sqlite``): every
order it sent (written before the send), the account's balances when Sorte's book started
on it (the baseline reconciliation compares against), and how far the exchange's fills have
been reconciled. Only the commander writes it; it survives restarts and kill -9 alike."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

ORDERS_FILE = "orders.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    client_order_id TEXT PRIMARY KEY,
    exchange_client_id TEXT NOT NULL,
    exchange_order_id TEXT,
    symbol TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    slot TEXT NOT NULL,
    at REAL NOT NULL  -- wall time of the latest create request (0: none went out)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OrderJournal:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / ORDERS_FILE
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a send must never be forgotten
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- orders ------------------------------------------------------------------------------
    def sending(self, cid: str, exchange_cid: str, symbol: str, epoch: int, slot: str) -> None:
        """About to send ``cid``: its row, before anything reaches the exchange."""
        self.db.execute(
            "INSERT OR IGNORE INTO sent VALUES (?,?,NULL,?,?,?,0)", (cid, exchange_cid, symbol, epoch, slot)
        )

    def creating(self, cid: str) -> None:
        """The create request of ``cid`` goes out now (``at``: the latest one's wall time)."""
        self.db.execute("UPDATE sent SET at=? WHERE client_order_id=?", (time.time(), cid))

    def last_sent_at(self, cid: str) -> float | None:
        """Wall time of the latest create request of ``cid``; None if none went out."""
        row = self.db.execute("SELECT at FROM sent WHERE client_order_id=?", (cid,)).fetchone()
        return float(row[0]) if row is not None and row[0] else None

    def sent(self, cid: str, exchange_order_id: str) -> None:
        self.db.execute("UPDATE sent SET exchange_order_id=? WHERE client_order_id=?", (exchange_order_id, cid))

    def exchange_order_ids(self) -> set[str]:
        rows = self.db.execute("SELECT exchange_order_id FROM sent WHERE exchange_order_id IS NOT NULL")
        return {r[0] for r in rows.fetchall()}

    def exchange_client_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT exchange_client_id FROM sent").fetchall()}

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM sent").fetchone()[0])

    # -- reconciliation ----------------------------------------------------------------------
    def baseline(self) -> dict[str, Any] | None:
        value = self._meta("baseline")
        return None if value is None else json.loads(value)

    def set_baseline(self, baseline: dict[str, Any]) -> None:
        self._set_meta("baseline", json.dumps(baseline, sort_keys=True))

    def trades_since_ms(self) -> int | None:
        value = self._meta("trades_since_ms")
        return None if value is None else int(value)

    def set_trades_since_ms(self, ms: int) -> None:
        self._set_meta("trades_since_ms", str(int(ms)))

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
