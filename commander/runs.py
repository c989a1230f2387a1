"""The commander's records of its slots and hand-overs: a running slot as it sees it, the
hand-over in flight, what each finished hand-over and rollback took, and the run's report."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from commander.analysis import StepSample
from commander.deployment import AnalysisResult, CheckResult, Deployment
from commander.protocol import Done, Ready, Role
from commander.slots import SlotClient

SAMPLES_KEPT = 5000


def other(slot: str) -> str:
    return "green" if slot == "blue" else "blue"


@dataclass
class SlotRun:
    """A running slot as the commander sees it."""

    client: SlotClient
    deployment: Deployment
    role: Role
    samples: deque[StepSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    critical: list[CheckResult] = field(default_factory=list)
    last_done: Ready | Done | None = None  # its latest answer: the book and cursor it holds
    since_tick: int = 0

    @property
    def slot(self) -> str:
        return self.deployment.slot

    def window(self, start_tick: int) -> list[StepSample]:
        return [s for s in self.samples if s.tick > start_tick]


@dataclass
class Handoff:
    to: SlotRun
    kind: Literal["promote", "rollback"]
    reason: str
    inbox_id: int | None = None
    analysis: AnalysisResult | None = None
    on_done: Callable[[float], None] | None = None  # records the rollback with the time the target trades


class HandoffRecord(BaseModel):
    kind: str
    tick: int
    from_deployment: int
    to_deployment: int
    epoch: int
    gap_ms: float | None  # old slot stopped new entries -> new slot allowed to trade
    book_matches: bool


class RollbackRecord(BaseModel):
    tick: int
    reason: str
    automatic: bool
    from_deployment: int
    to_deployment: int
    warm: bool
    fault_to_decision_ms: float | None = None
    duration_ms: float  # decision -> the target slot allowed to trade (its lease and book loaded)


class RollbackAnswer(BaseModel):
    """What a rollback request got: done at once, nothing to do, or carried on by the
    hand-over at the end of the next step (``pending``, no message yet)."""

    outcome: Literal["done", "nothing_to_do", "pending"]
    message: str = ""


class CommanderReport(BaseModel):
    ticks: int
    handoffs: list[HandoffRecord]
    rollbacks: list[RollbackRecord]
    restarts: int
    feed_gaps: int
    active: Deployment | None
