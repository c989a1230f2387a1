"""Ledger: orders, fills, positions, equity and the feed cursor in SQLite (WAL).

The runtime commits each batch (all bars of one step, with the fills, orders, positions and
cursor they produced) in one transaction, so a crash loses at most the batch in flight,
which is then replayed identically on restart. Client order ids are primary keys: the
same decision retried cannot store a second order. The JSONL trade journal is appended
after the commit and caught up from the ledger on open, so it never misses a fill.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sorte.errors import ConfigError
from sorte.runtime.values import Fill, Order, Position

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, qty REAL NOT NULL, kind TEXT NOT NULL,
    purpose TEXT NOT NULL, strategy TEXT NOT NULL, created_seq INTEGER NOT NULL,
    ts REAL NOT NULL, reason TEXT, limit_price REAL, stop_loss REAL, take_profit REAL,
    hold_s REAL, ttl_bars INTEGER, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, qty REAL NOT NULL, price REAL NOT NULL,
    fee REAL NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, purpose TEXT NOT NULL,
    strategy TEXT NOT NULL, realized_pnl REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY, qty REAL NOT NULL, entry_price REAL NOT NULL,
    entry_seq INTEGER NOT NULL, entry_ts REAL NOT NULL, strategy TEXT NOT NULL,
    stop_price REAL, take_price REAL, hold_until REAL
);
CREATE TABLE IF NOT EXISTS equity (
    step INTEGER PRIMARY KEY, ts REAL NOT NULL, cash REAL NOT NULL, equity REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor (symbol TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS account (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

ORDER_COLUMNS = (
    "client_order_id",
    "symbol",
    "side",
    "qty",
    "kind",
    "purpose",
    "strategy",
    "created_seq",
    "ts",
    "reason",
    "limit_price",
    "stop_loss",
    "take_profit",
    "hold_s",
    "ttl_bars",
    "status",
)
FILL_COLUMNS = (
    "client_order_id",
    "symbol",
    "side",
    "qty",
    "price",
    "fee",
    "seq",
    "ts",
    "purpose",
    "strategy",
    "realized_pnl",
)
POSITION_COLUMNS = (
    "symbol",
    "qty",
    "entry_price",
    "entry_seq",
    "entry_ts",
    "strategy",
    "stop_price",
    "take_price",
    "hold_until",
)


class Ledger:
    def __init__(self, path: Path | str, journal: Path | None = None, durable: bool = True) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self.db.executescript(SCHEMA)
        self.journal_path = journal
        if journal is not None:
            self._catch_up_journal()

    @classmethod
    def read_only(cls, path: Path | str) -> Ledger:
        """A reader of an existing ledger (the status page, Telegram): it never creates the
        file nor changes it, and does not wait on the writer (WAL)."""
        ledger = cls.__new__(cls)
        ledger.path, ledger.journal_path = Path(path), None
        ledger.db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, isolation_level=None)
        return ledger

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------
    def commit_step(
        self,
        step: int,
        ts: float,
        orders: list[Order],
        fills: list[Fill],
        positions: dict[str, Position],
        account: dict[str, float],
        equity: float,
        cursor: dict[str, int],
        settled: list[Order],
    ) -> None:
        """Store everything one runtime step produced, atomically."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                f"INSERT OR IGNORE INTO orders VALUES ({','.join('?' * len(ORDER_COLUMNS))})",
                [tuple(getattr(o, c) for c in ORDER_COLUMNS) for o in orders],
            )
            # State of orders created in earlier steps: final, or a limit order's remaining life.
            db.executemany(
                "UPDATE orders SET status=?, ttl_bars=? WHERE client_order_id=?",
                [(o.status, o.ttl_bars, o.client_order_id) for o in settled],
            )
            self._mark_filled(fills)
            db.executemany(
                f"INSERT OR IGNORE INTO fills ({','.join(FILL_COLUMNS)}) VALUES ({','.join('?' * len(FILL_COLUMNS))})",
                [tuple(getattr(f, c) for c in FILL_COLUMNS) for f in fills],
            )
            db.execute("DELETE FROM positions")
            db.executemany(
                f"INSERT INTO positions VALUES ({','.join('?' * len(POSITION_COLUMNS))})",
                [tuple(getattr(p, c) for c in POSITION_COLUMNS) for p in positions.values()],
            )
            db.execute("INSERT OR REPLACE INTO equity VALUES (?,?,?,?)", (step, ts, account["cash"], equity))
            db.executemany("INSERT OR REPLACE INTO cursor VALUES (?,?)", list(cursor.items()))
            db.executemany("INSERT OR REPLACE INTO account VALUES (?,?)", list(account.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._journal(fills)

    def replace_orders(self, replaced: list[tuple[Order, Order]]) -> None:
        """Orders placed again under another id (the first never reached the exchange): each old
        one marked with its status, each new one stored, in one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "UPDATE orders SET status=? WHERE client_order_id=?",
                [(old.status, old.client_order_id) for old, _ in replaced],
            )
            db.executemany(
                f"INSERT OR IGNORE INTO orders VALUES ({','.join('?' * len(ORDER_COLUMNS))})",
                [tuple(getattr(new, c) for c in ORDER_COLUMNS) for _, new in replaced],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _mark_filled(self, fills: list[Fill]) -> None:
        self.db.executemany(
            "UPDATE orders SET status='filled' WHERE client_order_id=?",
            [(f.client_order_id,) for f in fills],
        )

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    # -- reading -------------------------------------------------------------------------
    def cursor(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT symbol, seq FROM cursor").fetchall())

    def last_step_ts(self) -> float | None:
        """The bar time (epoch s) of the last step stored; None before the first."""
        row = self.db.execute("SELECT ts FROM equity ORDER BY step DESC LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def last_step(self) -> int:
        row = self.db.execute("SELECT MAX(step) FROM equity").fetchone()
        return -1 if row[0] is None else int(row[0])

    def account(self) -> dict[str, float]:
        return dict(self.db.execute("SELECT key, value FROM account").fetchall())

    def positions(self) -> dict[str, Position]:
        rows = self.db.execute(f"SELECT {','.join(POSITION_COLUMNS)} FROM positions").fetchall()
        return {r[0]: Position(*r) for r in rows}

    def open_orders(self) -> list[Order]:
        rows = self.db.execute(
            f"SELECT {','.join(ORDER_COLUMNS)} FROM orders WHERE status='new' ORDER BY rowid"
        ).fetchall()
        return [Order(**dict(zip(ORDER_COLUMNS, r, strict=True))) for r in rows]

    def book_state(self) -> tuple[dict[str, Position], list[Order], dict[str, float]]:
        """Positions, open orders and the account as of one committed step (one read
        transaction): a reader racing the writer never sees half of a step."""
        self.db.execute("BEGIN")
        try:
            return self.positions(), self.open_orders(), self.account()
        finally:
            self.db.execute("COMMIT")

    def fills(self) -> list[Fill]:
        rows = self.db.execute(f"SELECT {','.join(FILL_COLUMNS)} FROM fills ORDER BY id").fetchall()
        return [Fill(*r) for r in rows]

    def orders(self) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {','.join(ORDER_COLUMNS)} FROM orders ORDER BY rowid")
        return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in rows.fetchall()]

    def equity_curve(self) -> list[tuple[int, float, float]]:
        return self.db.execute("SELECT step, ts, equity FROM equity ORDER BY step").fetchall()

    # -- journal -------------------------------------------------------------------------
    def _journal(self, fills: list[Fill]) -> None:
        if self.journal_path is None or not fills:
            return
        ids = dict(
            self.db.execute(
                f"SELECT client_order_id, id FROM fills WHERE client_order_id IN ({','.join('?' * len(fills))})",
                [f.client_order_id for f in fills],
            ).fetchall()
        )
        with self.journal_path.open("a") as fh:
            for f in fills:
                fh.write(json.dumps({"fill_id": ids[f.client_order_id], **asdict(f)}) + "\n")
            fh.flush()

    def _catch_up_journal(self) -> None:
        """Append fills the ledger has but the journal lacks (crash between the two)."""
        assert self.journal_path is not None
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        last = 0
        if self.journal_path.exists() and self.journal_path.stat().st_size:
            with self.journal_path.open("rb+") as fh:  # end a line torn by a crash
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            for line in self.journal_path.read_text(errors="replace").splitlines():
                try:
                    last = max(last, int(json.loads(line)["fill_id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash mid-write is superseded below
        rows = self.db.execute(
            f"SELECT id, {','.join(FILL_COLUMNS)} FROM fills WHERE id > ? ORDER BY id", (last,)
        ).fetchall()
        if rows:
            with self.journal_path.open("a") as fh:
                for r in rows:
                    fh.write(json.dumps({"fill_id": r[0], **asdict(Fill(*r[1:]))}) + "\n")


def open_owned(
    path: Path, owner: str, fresh: bool, what: str, finished: Callable[[dict[str, int]], bool] | None = None
) -> Ledger:
    """Open the ledger of one feed (``owner`` fingerprints it). A ledger of another feed is
    refused; ``fresh``, or a finished run by ``finished(cursor)``, archives the old one."""
    journal = path.with_suffix(".journal.jsonl")
    if path.exists() and not fresh:
        probe = Ledger(path, durable=False)
        current, cursor = probe.meta("feed"), probe.cursor()
        probe.close()
        if current != owner:
            raise ConfigError(
                f"ledger {path} belongs to another {what}; "
                f"pass --fresh to archive it and start over, or --ledger for another file"
            )
        fresh = finished is not None and finished(cursor)
    if fresh and path.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for p in (path, journal, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if p.exists():
                p.rename(p.with_name(f"{p.name}.{stamp}"))
    ledger = Ledger(path, journal=journal)
    ledger.set_meta("feed", owner)
    return ledger
