"""Requests to a running commander from other processes (`sorte rollback`, later Telegram and
the status page), in SQLite next to the deployment history: the caller adds one and waits
for its result; the commander takes them between steps, in order. A commander killed while
handling one takes it again on restart (handling is idempotent)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from commander.deployment import DeploymentError

INBOX_FILE = "requests.sqlite"
LOCK_FILE = "commander.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


class Request(BaseModel):
    id: int
    kind: Literal["rollback"]
    args: dict[str, Any]
    status: Literal["pending", "done", "failed"]
    result: str


class Inbox:
    def __init__(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(Path(directory) / INBOX_FILE), isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def submit(self, kind: str, **args: Any) -> int:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO requests (kind, args, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (kind, json.dumps(args), now, now),
        )
        assert cur.lastrowid is not None  # set by an INSERT
        return cur.lastrowid

    def pending(self) -> list[Request]:
        rows = self.db.execute("SELECT * FROM requests WHERE status = 'pending' ORDER BY id").fetchall()
        return [_request(r) for r in rows]

    def finish(self, id: int, ok: bool, result: str) -> None:
        self.db.execute(
            "UPDATE requests SET status = ?, result = ?, updated_at = ? WHERE id = ?",
            ("done" if ok else "failed", result, time.time(), id),
        )

    def get(self, id: int) -> Request:
        row = self.db.execute("SELECT * FROM requests WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise DeploymentError(f"no commander request {id}")
        return _request(row)


def _request(row: sqlite3.Row) -> Request:
    return Request(
        id=row["id"], kind=row["kind"], args=json.loads(row["args"]), status=row["status"], result=row["result"]
    )


class CommanderLock:
    """One commander per data directory: an exclusive lock on a file, released by the
    kernel when the process ends, however it ends (kill -9 included)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeploymentError(
                f"another commander is running on {self.path.parent} (pid {self._holder()}); "
                "`sorte deploy` and `sorte rollback` talk to it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"


def commander_running(directory: Path) -> bool:
    """True when a commander holds the lock of this data directory."""
    path = Path(directory) / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this probe took
    return False
