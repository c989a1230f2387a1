"""The order-writer lease: which slot (blue or green) may place orders, at which epoch.

One row in a SQLite file (WAL, synchronous=FULL) under a data directory the caller gives.
Every change is one ``BEGIN IMMEDIATE`` transaction, so of two processes that race for the
lease exactly one wins, and every change that hands the lease to a slot bumps the epoch by
one. Epochs never go down (a trigger refuses it) and survive restarts: they live in the file.

The broker side checks the epoch (see ``commander.fencing``): an order stamped with an epoch
that is no longer the current one, or sent by a slot that no longer holds the lease, is
refused, so a slot that lost the lease cannot place an order after the hand-over.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from sorte.errors import SorteError

Slot = Literal["blue", "green"]
SLOTS: tuple[str, ...] = ("blue", "green")
LEASE_FILE = "lease.sqlite"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder TEXT,
        epoch INTEGER NOT NULL CHECK (epoch >= 0),
        acquired_at REAL,
        heartbeat_at REAL
    )""",
    "INSERT OR IGNORE INTO lease (id, holder, epoch) VALUES (1, NULL, 0)",
    """CREATE TRIGGER IF NOT EXISTS lease_epoch_never_down BEFORE UPDATE OF epoch ON lease
    WHEN NEW.epoch < OLD.epoch BEGIN SELECT RAISE(ABORT, 'lease epoch may not go down'); END""",
    """CREATE TRIGGER IF NOT EXISTS lease_never_deleted BEFORE DELETE ON lease
    BEGIN SELECT RAISE(ABORT, 'the lease row may not be deleted'); END""",
)


class LeaseError(SorteError):
    """The lease store was used wrongly (unknown slot, bad epoch)."""


class LeaseConflict(LeaseError):
    """The lease is not in the state the caller expected: someone else holds it, or the epoch moved."""


class LeaseState(BaseModel):
    holder: Slot | None  # None: free
    epoch: int  # 0 before the first acquire; bumped by every acquire and transfer
    acquired_at: float | None = None  # epoch seconds
    heartbeat_at: float | None = None

    def describe(self) -> str:
        if self.holder is None:
            return f"the lease is free at epoch {self.epoch}"
        return f"{self.holder} holds the lease at epoch {self.epoch}"


def _check_slot(slot: str) -> None:
    if slot not in SLOTS:
        raise LeaseError(f"unknown slot {slot!r}: a slot is one of {', '.join(SLOTS)}")


class Lease:
    """The lease store of one data directory. One instance per process (one SQLite connection)."""

    def __init__(self, data_dir: Path | str, clock: Callable[[], float] = time.time, timeout_s: float = 30.0) -> None:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LEASE_FILE
        self.clock = clock
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=timeout_s)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        created = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'lease_never_deleted'"
        if self.db.execute(created).fetchone() is None:  # no write lock to open an existing store
            with self._transaction():
                for statement in _SCHEMA:
                    self.db.execute(statement)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def current(self) -> LeaseState:
        return self._read()

    def is_current(self, epoch: int) -> bool:
        """True when the lease is held and ``epoch`` is its epoch."""
        state = self._read()
        return state.holder is not None and state.epoch == epoch

    # -- changing --------------------------------------------------------------------------
    def acquire(self, slot: str, expect_epoch: int | None) -> LeaseState:
        """Take the lease if it is free, or if ``expect_epoch`` is its current epoch (a takeover
        from a holder the caller has judged dead). The epoch goes up by one either way."""
        _check_slot(slot)
        with self._transaction():
            state = self._read()
            if state.holder is not None and expect_epoch != state.epoch:
                expected = "a free lease" if expect_epoch is None else f"epoch {expect_epoch}"
                raise LeaseConflict(f"{slot} cannot acquire the lease: {state.describe()} (expected {expected})")
            now = self.clock()
            return self._write(slot, state.epoch + 1, now, now)

    def release(self, slot: str, epoch: int) -> LeaseState:
        """Free the lease held by ``slot`` at ``epoch``; releasing an already free lease at that
        epoch again is a no-op. The epoch stays: the next acquire goes above it."""
        _check_slot(slot)
        with self._transaction():
            state = self._read()
            if state.holder is None and state.epoch == epoch:
                return state
            self._require_holder(state, slot, epoch, "release")
            return self._write(None, epoch, None, None)

    def transfer(self, from_slot: str, to_slot: str, epoch: int) -> LeaseState:
        """Hand the lease from ``from_slot`` (holding it at ``epoch``) to ``to_slot`` at
        ``epoch + 1`` in one transaction. Repeating a transfer that already happened returns
        the current state."""
        _check_slot(from_slot)
        _check_slot(to_slot)
        if from_slot == to_slot:
            raise LeaseError(f"cannot transfer the lease from {from_slot} to itself")
        with self._transaction():
            state = self._read()
            if state.holder == to_slot and state.epoch == epoch + 1:
                return state  # a retried hand-over
            self._require_holder(state, from_slot, epoch, f"transfer to {to_slot}")
            now = self.clock()
            return self._write(to_slot, epoch + 1, now, now)

    def heartbeat(self, slot: str, epoch: int) -> LeaseState:
        _check_slot(slot)
        with self._transaction():
            state = self._read()
            self._require_holder(state, slot, epoch, "heartbeat")
            return self._write(slot, epoch, state.acquired_at, self.clock())

    @contextmanager
    def guard(self, slot: str, epoch: int) -> Iterator[LeaseState]:
        """Hold the store's write lock while the body runs, after checking that ``slot`` holds
        the lease at ``epoch``: no acquire or transfer can commit until the body is done, so
        what the body does (send an order) happens under that epoch. Raises LeaseConflict."""
        _check_slot(slot)
        with self._transaction():
            state = self._read()
            self._require_holder(state, slot, epoch, "place orders")
            yield state

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _read(self) -> LeaseState:
        row = self.db.execute("SELECT holder, epoch, acquired_at, heartbeat_at FROM lease WHERE id = 1").fetchone()
        return LeaseState(holder=row[0], epoch=row[1], acquired_at=row[2], heartbeat_at=row[3])

    def _write(
        self, holder: str | None, epoch: int, acquired_at: float | None, heartbeat_at: float | None
    ) -> LeaseState:
        self.db.execute(
            "UPDATE lease SET holder = ?, epoch = ?, acquired_at = ?, heartbeat_at = ? WHERE id = 1",
            (holder, epoch, acquired_at, heartbeat_at),
        )
        return LeaseState(holder=holder, epoch=epoch, acquired_at=acquired_at, heartbeat_at=heartbeat_at)

    @staticmethod
    def _require_holder(state: LeaseState, slot: str, epoch: int, action: str) -> None:
        if state.holder != slot or state.epoch != epoch:
            raise LeaseConflict(f"{slot} at epoch {epoch} cannot {action}: {state.describe()}")
