"""Deployment history in SQLite (WAL): deployments, their states and an append-only event log.

Every change is one transaction, so a commander killed at any point finds on restart either
the state before or the state after each change, never half of one. Changes are idempotent:
``create`` with a request id already seen returns that deployment, and a transition to the
state a deployment is already in does nothing, so a resumed commander can replay its steps.

Activating a deployment demotes the one that was active in the same transaction: to
``warm`` when it ran in the other slot (a rollback is then only a lease handover), to
``retired`` otherwise; any other warm deployment is retired (its slot has been taken). A
rollback is two changes: the active deployment to ``rolled_back``, then ``previous()`` (or
the deployment named by ``sorte rollback --to``) to ``active``; replaying both after a
crash is harmless.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from commander.deployment import (
    PROMOTING_STATES,
    REJECTED_STATES,
    SLOTS,
    TRANSITIONS,
    AnalysisResult,
    CommitRejected,
    Deployment,
    DeploymentError,
    DeploymentEvent,
    EventOutcome,
    IllegalTransition,
    UnknownDeployment,
    can_transition,
)

NO_UPDATE = """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the deployment event log is append-only'); END;"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT UNIQUE,
    commit_sha TEXT NOT NULL,
    slot TEXT NOT NULL CHECK (slot IN ('blue', 'green')),
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    epoch INTEGER,
    analysis TEXT,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deployments_commit ON deployments (commit_sha);
CREATE UNIQUE INDEX IF NOT EXISTS deployments_one_active ON deployments (state) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    from_state TEXT,
    to_state TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS events_deployment ON events (deployment_id, seq);
{NO_UPDATE}
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the deployment event log is append-only'); END;
"""
# What an event's reason meant before events had an outcome (see ``_add_outcomes``).
_OUTCOME_OF_OLD_REASONS = (
    ("watch_passed", "from_state = to_state AND reason = 'post-promotion watch passed'"),
    ("watch_ended", "from_state = to_state AND reason LIKE 'post-promotion watch ended early%'"),
    ("rollback", "to_state = 'active' AND reason LIKE 'rollback%'"),
)

_COLUMNS = "id, request_id, commit_sha, slot, state, requested_by, created_at, updated_at, epoch, analysis, reason"
_REJECTED_SQL = ", ".join(f"'{s}'" for s in sorted(REJECTED_STATES))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeploymentHistory:
    """The commander's record of deployments; one file, safe to reopen after a crash."""

    def __init__(self, path: Path | str, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or _utcnow
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._add_outcomes()

    def close(self) -> None:
        self.db.close()

    def _add_outcomes(self) -> None:
        """A history from before events had an outcome gets the column, and its events the
        outcome their reason meant then (the only time a reason is read for its meaning)."""

        def has_outcome(db: sqlite3.Connection) -> bool:
            return any(row["name"] == "outcome" for row in db.execute("PRAGMA table_info(events)"))

        if has_outcome(self.db):
            return
        with self._write() as db:
            if has_outcome(db):  # another process migrated it meanwhile
                return
            db.execute("DROP TRIGGER events_no_update")  # the log stays append-only: recreated below
            db.execute("ALTER TABLE events ADD COLUMN outcome TEXT")
            for outcome, where in _OUTCOME_OF_OLD_REASONS:
                db.execute(f"UPDATE events SET outcome = ? WHERE {where}", (outcome,))
            db.execute(NO_UPDATE)

    def __enter__(self) -> DeploymentHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat()

    def create(self, commit: str, slot: str, requested_by: str, request_id: str | None = None) -> Deployment:
        """Record a requested deployment; a request id already recorded returns its deployment."""
        if slot not in SLOTS:
            raise DeploymentError(f"unknown slot {slot!r}: use one of {', '.join(SLOTS)}")
        if not commit:
            raise DeploymentError("a deployment needs a commit")
        with self._write() as db:
            if request_id is not None:
                row = db.execute(f"SELECT {_COLUMNS} FROM deployments WHERE request_id = ?", (request_id,)).fetchone()
                if row is not None:
                    if row["commit_sha"] != commit:
                        raise DeploymentError(
                            f"request {request_id} was recorded for commit {row['commit_sha']}, not {commit}"
                        )
                    return _deployment(row)
            now = self._now()
            cursor = db.execute(
                "INSERT INTO deployments (request_id, commit_sha, slot, state, requested_by, created_at, updated_at)"
                " VALUES (?, ?, ?, 'requested', ?, ?, ?)",
                (request_id, commit, slot, requested_by, now, now),
            )
            deployment_id = cursor.lastrowid
            assert deployment_id is not None  # set by an INSERT
            self._event(db, deployment_id, None, "requested", now, f"requested by {requested_by}")
            return _deployment(self._row(db, deployment_id))

    def transition(
        self,
        id: int,
        new_state: str,
        reason: str = "",
        analysis: AnalysisResult | dict[str, Any] | None = None,
        epoch: int | None = None,
    ) -> Deployment:
        """Move a deployment to ``new_state`` if the transition table allows it.

        Already in ``new_state``: nothing changes (a resumed commander replays its steps).
        Raises IllegalTransition, CommitRejected (promoting a rejected commit) or
        UnknownDeployment; nothing is written then.
        """
        if new_state not in TRANSITIONS:
            raise IllegalTransition(f"unknown deployment state {new_state!r}: use one of {', '.join(TRANSITIONS)}")
        analysis_json = _analysis_json(analysis)
        with self._write() as db:
            row = self._row(db, id)
            current = row["state"]
            if current == new_state:
                return _deployment(row)
            if not can_transition(current, new_state):
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "none, it is final"
                raise IllegalTransition(
                    f"deployment {id} is {current}; it cannot become {new_state} (allowed: {allowed})"
                )
            if new_state in PROMOTING_STATES and self._commit_rejected(db, row["commit_sha"]):
                raise CommitRejected(
                    f"commit {row['commit_sha']} was rejected or rolled back; deploy a new change instead"
                )
            now = self._now()
            if new_state == "active":
                self._demote_others(db, row, now)
            db.execute(
                "UPDATE deployments SET state = ?, updated_at = ?,"
                " reason = CASE WHEN ? = '' THEN reason ELSE ? END,"
                " analysis = COALESCE(?, analysis), epoch = COALESCE(?, epoch) WHERE id = ?",
                (new_state, now, reason, reason, analysis_json, epoch, id),
            )
            self._event(db, id, current, new_state, now, reason)
            return _deployment(self._row(db, id))

    def note(self, id: int, reason: str, outcome: EventOutcome | None = None) -> None:
        """Append an event that changes no state (e.g. "post-promotion watch passed")."""
        with self._write() as db:
            state = self._row(db, id)["state"]
            self._event(db, id, state, state, self._now(), reason, outcome)

    def reassign_slot(self, id: int, slot: str) -> Deployment:
        """Move a requested deployment to another slot (the idle one changed since the request)."""
        if slot not in SLOTS:
            raise DeploymentError(f"unknown slot {slot!r}: use one of {', '.join(SLOTS)}")
        with self._write() as db:
            row = self._row(db, id)
            if row["slot"] != slot:
                if row["state"] not in ("requested", "starting", "shadow"):
                    raise IllegalTransition(f"deployment {id} is {row['state']}; only one not yet judged changes slot")
                db.execute("UPDATE deployments SET slot = ?, updated_at = ? WHERE id = ?", (slot, self._now(), id))
            return _deployment(self._row(db, id))

    def rollback(self, current_id: int, target_id: int, reason: str, epoch: int) -> Deployment:
        """In one transaction: the active deployment becomes rolled_back (its commit may not
        be promoted again) and ``target`` becomes active at ``epoch``. Replaying a rollback
        that already happened returns the target unchanged."""
        with self._write() as db:
            current, target = self._row(db, current_id), self._row(db, target_id)
            if current["state"] == "rolled_back" and target["state"] == "active":
                return _deployment(target)
            if current["state"] != "active":
                raise IllegalTransition(
                    f"deployment {current_id} is {current['state']}, not active: nothing to roll back"
                )
            if target["state"] not in ("warm", "retired", "promoting"):
                raise IllegalTransition(
                    f"deployment {target_id} is {target['state']}; only a warm, retired or promoting one can take over"
                )
            if target["commit_sha"] == current["commit_sha"] or self._commit_rejected(db, target["commit_sha"]):
                raise CommitRejected(f"commit {target['commit_sha']} was rejected or rolled back; pick another")
            now = self._now()
            for row, state, why in ((current, "rolled_back", reason), (target, "active", f"rollback: {reason}")):
                db.execute(
                    "UPDATE deployments SET state = ?, updated_at = ?, reason = ?,"
                    " epoch = CASE WHEN ? THEN ? ELSE epoch END WHERE id = ?",
                    (state, now, why, state == "active", epoch, row["id"]),
                )
                self._event(db, row["id"], row["state"], state, now, why, "rollback" if state == "active" else None)
            return _deployment(self._row(db, target_id))

    def _demote_others(self, db: sqlite3.Connection, row: sqlite3.Row, now: str) -> None:
        others = db.execute(
            "SELECT id, slot, state FROM deployments WHERE state IN ('active', 'warm') AND id != ?", (row["id"],)
        ).fetchall()
        for other in others:
            to = "warm" if other["state"] == "active" and other["slot"] != row["slot"] else "retired"
            if to == other["state"]:
                continue
            db.execute("UPDATE deployments SET state = ?, updated_at = ? WHERE id = ?", (to, now, other["id"]))
            self._event(db, other["id"], other["state"], to, now, f"deployment {row['id']} became active")

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        id: int,
        from_state: str | None,
        to_state: str,
        at: str,
        reason: str,
        outcome: EventOutcome | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO events (deployment_id, from_state, to_state, at, reason, outcome) VALUES (?, ?, ?, ?, ?, ?)",
            (id, from_state, to_state, at, reason, outcome),
        )

    # -- reading -------------------------------------------------------------------------
    @staticmethod
    def _row(db: sqlite3.Connection, id: int) -> sqlite3.Row:
        row = db.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise UnknownDeployment(f"no deployment {id}: `sorte status` lists them")
        return row

    @staticmethod
    def _commit_rejected(db: sqlite3.Connection, commit: str) -> bool:
        query = f"SELECT 1 FROM deployments WHERE commit_sha = ? AND state IN ({_REJECTED_SQL}) LIMIT 1"
        return db.execute(query, (commit,)).fetchone() is not None

    def get(self, id: int) -> Deployment:
        with self._lock:
            return _deployment(self._row(self.db, id))

    def active(self) -> Deployment | None:
        with self._lock:
            row = self.db.execute(f"SELECT {_COLUMNS} FROM deployments WHERE state = 'active'").fetchone()
        return _deployment(row) if row is not None else None

    def previous(self) -> Deployment | None:
        """The deployment most recently active before the current one that may be active again.

        Only warm or retired deployments count, and none whose commit was rejected or rolled
        back (by any deployment of it)."""
        query = (
            f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))} FROM deployments d"
            " JOIN (SELECT deployment_id, MAX(seq) AS seq FROM events WHERE to_state = 'active'"
            " GROUP BY deployment_id) e ON e.deployment_id = d.id"
            " WHERE d.state IN ('warm', 'retired') AND d.commit_sha NOT IN"
            f" (SELECT commit_sha FROM deployments WHERE state IN ({_REJECTED_SQL}))"
            " ORDER BY e.seq DESC LIMIT 1"
        )
        with self._lock:
            row = self.db.execute(query).fetchone()
        return _deployment(row) if row is not None else None

    def in_state(self, *states: str) -> list[Deployment]:
        """Deployments in any of ``states``, oldest first."""
        marks = ", ".join("?" * len(states))
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM deployments WHERE state IN ({marks}) ORDER BY id", states
            ).fetchall()
        return [_deployment(r) for r in rows]

    def activated_by_rollback(self, id: int) -> bool:
        """True when the deployment's latest activation was a rollback."""
        with self._lock:
            row = self.db.execute(
                "SELECT outcome FROM events WHERE deployment_id = ? AND to_state = 'active' ORDER BY seq DESC LIMIT 1",
                (id,),
            ).fetchone()
        return row is not None and row["outcome"] == "rollback"

    def list(self, limit: int = 20) -> list[Deployment]:
        """The newest deployments first."""
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM deployments ORDER BY id DESC LIMIT ?", (max(0, limit),)
            ).fetchall()
        return [_deployment(r) for r in rows]

    def is_rejected(self, commit: str) -> bool:
        """True when a deployment of ``commit`` was rejected or rolled back: it cannot be promoted again."""
        with self._lock:
            return self._commit_rejected(self.db, commit)

    def events(self, id: int) -> builtins.list[DeploymentEvent]:  # `list` here is the method above
        """The deployment's state changes, oldest first (the creation event included)."""
        with self._lock:
            self._row(self.db, id)
            rows = self.db.execute(
                "SELECT seq, deployment_id, from_state, to_state, at, reason, outcome FROM events"
                " WHERE deployment_id = ? ORDER BY seq",
                (id,),
            ).fetchall()
        return [DeploymentEvent(**dict(r)) for r in rows]


def _analysis_json(analysis: AnalysisResult | dict[str, Any] | None) -> str | None:
    if analysis is None:
        return None
    if isinstance(analysis, dict):
        try:
            analysis = AnalysisResult.model_validate(analysis)
        except ValidationError as error:
            raise DeploymentError(f"malformed analysis result: {error}") from error
    return json.dumps(analysis.model_dump(mode="json"), sort_keys=True)


def _deployment(row: sqlite3.Row) -> Deployment:
    return Deployment(
        id=row["id"],
        commit=row["commit_sha"],
        slot=row["slot"],
        state=row["state"],
        requested_by=row["requested_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        epoch=row["epoch"],
        analysis=json.loads(row["analysis"]) if row["analysis"] else None,
        reason=row["reason"],
        request_id=row["request_id"],
    )
