"""Deployment history: lifecycle, rollback bookkeeping, refusals, idempotency, persistence."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from commander.deployment import (
    TRANSITIONS,
    AnalysisResult,
    CheckResult,
    CommitRejected,
    DeploymentError,
    IllegalTransition,
    UnknownDeployment,
)
from commander.history import DeploymentHistory
from sorte.errors import SorteError

PATH_TO_ACTIVE = ("starting", "shadow", "analysing", "promoting", "active")


@pytest.fixture
def history(tmp_path):
    with DeploymentHistory(tmp_path / "commander" / "history.sqlite") as h:
        yield h


def _analysis(verdict: str = "pass") -> AnalysisResult:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return AnalysisResult(
        verdict=verdict,
        checks=[
            CheckResult(name="no errors", kind="critical", outcome="pass"),
            CheckResult(name="pnl", kind="performance", outcome=verdict, detail="+0.4%"),
        ],
        started_at=at,
        finished_at=at,
    )


def _activate(history: DeploymentHistory, commit: str, slot: str, epoch: int = 1):
    deployment = history.create(commit, slot, "run-" + commit)
    for state in PATH_TO_ACTIVE:
        analysis = _analysis() if state == "promoting" else None
        deployment = history.transition(
            deployment.id, state, reason=f"to {state}", analysis=analysis, epoch=epoch if state == "active" else None
        )
    return deployment


def test_lifecycle_to_active(history):
    deployment = history.create("abc123", "blue", "run-1")
    assert deployment.state == "requested"
    assert deployment.requested_by == "run-1"
    assert history.active() is None
    deployment = _activate(history, "abc123", "green", epoch=7)
    assert deployment.state == "active"
    assert deployment.epoch == 7
    assert deployment.analysis["verdict"] == "pass"
    assert deployment.analysis["checks"][1]["kind"] == "performance"
    assert deployment.reason == "to active"
    assert history.active() == deployment
    assert history.previous() is None


def test_new_active_demotes_the_old_one(history):
    first = _activate(history, "c1", "blue", epoch=1)
    second = _activate(history, "c2", "green", epoch=2)
    assert history.active().id == second.id
    assert history.get(first.id).state == "warm"
    assert history.previous().id == first.id
    third = _activate(history, "c3", "blue", epoch=3)
    # The third took the first's slot: the first is retired, the second is now the warm one.
    assert history.get(first.id).state == "retired"
    assert history.get(second.id).state == "warm"
    assert history.active().id == third.id
    assert history.previous().id == second.id
    assert history.events(first.id)[-1].reason == f"deployment {third.id} became active"


def test_rollback_marks_rejected_and_previous_skips_it(history):
    first = _activate(history, "c1", "blue")
    second = _activate(history, "c2", "green")
    third = _activate(history, "c3", "blue")
    # Roll back the third to the second.
    history.transition(third.id, "rolled_back", reason="drawdown over the limit")
    assert history.active() is None
    assert history.is_rejected("c3")
    assert not history.is_rejected("c2")
    assert history.previous().id == second.id
    history.transition(second.id, "active", reason="rollback", epoch=4)
    assert history.active().epoch == 4
    # Roll back the second too: previous() skips both rolled-back deployments.
    history.transition(second.id, "rolled_back", reason="again")
    assert history.previous().id == first.id
    # A rolled-back commit cannot be promoted again, even as a new deployment.
    again = history.create("c3", "green", "run-again")
    for state in ("starting", "shadow", "analysing"):
        history.transition(again.id, state)
    with pytest.raises(CommitRejected):
        history.transition(again.id, "promoting")
    assert history.get(again.id).state == "analysing"


def test_analysis_rejection_counts_as_rejected(history):
    _activate(history, "good", "blue")
    bad = history.create("bad", "green", "run-2")
    for state in ("starting", "shadow", "analysing"):
        history.transition(bad.id, state)
    bad = history.transition(bad.id, "rejected", reason="pnl worse", analysis=_analysis("fail"))
    assert bad.analysis["verdict"] == "fail"
    assert history.is_rejected("bad")
    assert not history.is_rejected("good")
    assert not history.is_rejected("unknown")
    assert history.previous() is None  # a rejected deployment was never active


def test_previous_skips_a_commit_rejected_elsewhere(history):
    first = _activate(history, "c1", "blue")
    _activate(history, "c2", "green")
    # Another deployment of c1 gets rejected: the old c1 deployment must not come back.
    retry = history.create("c1", "blue", "run-retry")
    history.transition(retry.id, "rejected", reason="refused")
    assert history.get(first.id).state == "warm"
    assert history.previous() is None
    with pytest.raises(CommitRejected):
        history.transition(first.id, "active")


def test_illegal_transitions_are_refused_and_change_nothing(history):
    deployment = history.create("abc", "blue", "cli")
    events_before = history.events(deployment.id)
    for state in ("active", "shadow", "warm", "retired", "rolled_back"):
        with pytest.raises(IllegalTransition) as raised:
            history.transition(deployment.id, state)
        assert isinstance(raised.value, SorteError)
        assert "requested" in str(raised.value)
    with pytest.raises(IllegalTransition):
        history.transition(deployment.id, "nonsense")
    with pytest.raises(UnknownDeployment):
        history.transition(999, "starting")
    failed = history.transition(deployment.id, "failed", reason="image missing")
    for state in TRANSITIONS:
        if state != "failed":
            with pytest.raises(IllegalTransition):
                history.transition(deployment.id, state)
    assert history.get(deployment.id) == failed
    assert len(history.events(deployment.id)) == len(events_before) + 1


def test_malformed_input_is_refused(history):
    with pytest.raises(DeploymentError):
        history.create("abc", "purple", "cli")
    deployment = history.create("abc", "blue", "cli")
    history.transition(deployment.id, "starting")
    with pytest.raises(DeploymentError):
        history.transition(deployment.id, "shadow", analysis={"verdict": "maybe"})
    assert history.get(deployment.id).state == "starting"


def test_create_is_idempotent_per_request_id(history):
    first = history.create("abc", "blue", "run-1", request_id="deploy-run-1")
    again = history.create("abc", "green", "run-1", request_id="deploy-run-1")
    assert again == first
    other = history.create("abc", "green", "run-1", request_id="deploy-run-2")
    assert other.id != first.id
    without = [history.create("abc", "blue", "cli"), history.create("abc", "blue", "cli")]
    assert without[0].id != without[1].id
    assert len(history.list(100)) == 4
    assert len(history.events(first.id)) == 1
    with pytest.raises(DeploymentError):
        history.create("other", "blue", "run-1", request_id="deploy-run-1")


def test_repeated_transition_is_a_no_op(history):
    deployment = history.create("abc", "blue", "run-1")
    started = history.transition(deployment.id, "starting", reason="first")
    again = history.transition(deployment.id, "starting", reason="resumed")
    assert again == started
    assert [e.to_state for e in history.events(deployment.id)] == ["requested", "starting"]
    active = _activate(history, "xyz", "green")
    assert history.transition(active.id, "active") == active


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "history.sqlite"
    with DeploymentHistory(path) as history:
        first = _activate(history, "c1", "blue")
        second = _activate(history, "c2", "green")
        pending = history.create("c3", "blue", "run-3", request_id="deploy-run-3")
        history.transition(pending.id, "starting")
    with DeploymentHistory(path) as history:
        assert history.active() == second
        assert history.previous().id == first.id
        assert history.get(pending.id).state == "starting"
        assert history.create("c3", "blue", "run-3", request_id="deploy-run-3").id == pending.id
        history.transition(pending.id, "starting")  # a resumed commander replays its step
        history.transition(pending.id, "shadow")
        assert [d.id for d in history.list(2)] == [pending.id, second.id]


def test_events_recorded_in_order_and_append_only(history):
    first = _activate(history, "c1", "blue")
    second = _activate(history, "c2", "green")
    events = history.events(first.id)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "requested"),
        ("requested", "starting"),
        ("starting", "shadow"),
        ("shadow", "analysing"),
        ("analysing", "promoting"),
        ("promoting", "active"),
        ("active", "warm"),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[2].reason == "to shadow"
    assert all(e.deployment_id == first.id for e in events)
    assert history.events(second.id)[-1].to_state == "active"
    with pytest.raises(UnknownDeployment):
        history.events(999)
    with pytest.raises(sqlite3.DatabaseError):
        history.db.execute("DELETE FROM events")
    with pytest.raises(sqlite3.DatabaseError):
        history.db.execute("UPDATE events SET reason = 'x'")


def test_a_history_from_before_event_outcomes_gets_them_from_its_reasons(tmp_path):
    path = tmp_path / "old.sqlite"
    with DeploymentHistory(path) as h:
        first = _activate(h, "aaa", "blue")
        second = _activate(h, "bbb", "green", epoch=2)
        h.note(second.id, "post-promotion watch passed")
        h.rollback(second.id, first.id, "manual", 3)
    # What a history written before the outcome column looked like: the same events, no column.
    db = sqlite3.connect(path)
    db.executescript(
        "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; ALTER TABLE events DROP COLUMN outcome;"
    )
    db.close()
    with DeploymentHistory(path) as h:
        assert [e.outcome for e in h.events(second.id) if e.outcome] == ["watch_passed"]
        assert h.activated_by_rollback(first.id) and not h.activated_by_rollback(second.id)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            h.db.execute("UPDATE events SET reason = 'x'")
