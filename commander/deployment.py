"""The commander's own models: deployments, their states and the analysis result.

A deployment is one commit running (or meant to run) in one of two slots, blue or green.
Its life, and the only state changes the history accepts (``TRANSITIONS``):

    requested  -> starting | rejected | failed
    starting   -> shadow | promoting | failed
    shadow     -> analysing | rejected | failed
    analysing  -> promoting | shadow | rejected | inconclusive | failed
    promoting  -> active | failed
    active     -> warm | retired | rolled_back
    warm       -> active | retired
    retired    -> active
    rolled_back, rejected, inconclusive, failed: final

- requested: the agent (or the CLI) asked for the commit; nothing runs yet.
- starting: the slot's process is being started. It goes straight to promoting when
  there is nothing to compare it with (the first deployment, a cold rollback).
- shadow: it runs next to the active deployment without the lease (no orders).
- analysing: its shadow results are being compared with the active deployment.
- rejected: the analysis failed (or the commit was refused); never promoted.
- inconclusive: too little data to judge; not promoted, but not rejected either: the same
  commit may be deployed again. (analysing -> shadow: a restarted commander starts the
  shadow window over.)
- promoting: the lease is being handed over to it.
- active: it holds the lease; exactly one deployment is active at a time.
- warm: it was active, another deployment took over; its process stays up so that a
  rollback is just a lease handover.
- retired: its process is stopped; ``sorte rollback --to`` may still bring it back
  (the commander restarts its slot before giving it the lease).
- rolled_back: it was active and was rolled back; like rejected, its commit cannot be
  promoted again without a new change.
- failed: it crashed or could not be started, shadowed or promoted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from sorte.errors import SorteError

Slot = Literal["blue", "green"]
SLOTS: tuple[Slot, ...] = ("blue", "green")

DeploymentState = Literal[
    "requested",
    "starting",
    "shadow",
    "analysing",
    "promoting",
    "active",
    "warm",
    "retired",
    "rolled_back",
    "rejected",
    "inconclusive",
    "failed",
]

TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"starting", "rejected", "failed"}),
    "starting": frozenset({"shadow", "promoting", "failed"}),
    "shadow": frozenset({"analysing", "rejected", "failed"}),
    "analysing": frozenset({"promoting", "shadow", "rejected", "inconclusive", "failed"}),
    "promoting": frozenset({"active", "failed"}),
    "active": frozenset({"warm", "retired", "rolled_back"}),
    "warm": frozenset({"active", "retired"}),
    "retired": frozenset({"active"}),
    "rolled_back": frozenset(),
    "rejected": frozenset(),
    "inconclusive": frozenset(),
    "failed": frozenset(),
}

# A commit with a deployment in one of these states may not be promoted again.
REJECTED_STATES: frozenset[str] = frozenset({"rejected", "rolled_back"})
# Reaching one of these needs a commit that is not rejected.
PROMOTING_STATES: frozenset[str] = frozenset({"promoting", "active"})
# Nothing more happens to a deployment in one of these.
FINAL_STATES: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# A deployment in one of these is on its way in: the commander carries it on.
IN_FLIGHT_STATES: frozenset[str] = frozenset({"requested", "starting", "shadow", "analysing", "promoting"})


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class DeploymentError(SorteError):
    """A deployment history operation that cannot be done."""


class UnknownDeployment(DeploymentError):
    """No deployment with that id."""


class IllegalTransition(DeploymentError):
    """A state change that the transition table does not allow."""


class CommitRejected(DeploymentError):
    """The commit was rejected or rolled back before; it needs a new change."""


class CheckResult(BaseModel):
    name: str
    kind: Literal["critical", "performance"]
    outcome: Literal["pass", "fail", "inconclusive"]
    detail: str = ""


class AnalysisResult(BaseModel):
    verdict: Literal["pass", "fail", "inconclusive"]
    checks: list[CheckResult] = []
    started_at: datetime
    finished_at: datetime


class Deployment(BaseModel):
    id: int
    commit: str
    slot: Slot
    state: DeploymentState
    requested_by: str  # the agent's run id, or "cli"
    created_at: datetime
    updated_at: datetime
    epoch: int | None = None
    analysis: dict[str, Any] | None = None  # an AnalysisResult as JSON
    reason: str = ""
    request_id: str | None = None


# What an event means beyond its state change, for code to read (the reason is for people):
# the post-promotion watch passed or ended early, an activation that was a rollback.
EventOutcome = Literal["watch_passed", "watch_ended", "rollback"]


class DeploymentEvent(BaseModel):
    seq: int
    deployment_id: int
    from_state: DeploymentState | None  # None for the creation event
    to_state: DeploymentState
    at: datetime
    reason: str = ""
    outcome: EventOutcome | None = None
