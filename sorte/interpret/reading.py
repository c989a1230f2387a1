"""What the interpreter reads from one message."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sorte.editing.plan import EditPlan
from sorte.interpret.replies import Language

IntentKind = Literal[
    "change", "optimise", "explain", "lessons", "status", "pnl", "rollback", "approve", "reject", "help", "unclear"
]
#: edit: a plan is ready; answer: said without a change; ask: one question back; refuse: said why
#: not; code: new logic, for the coder role.
Action = Literal["edit", "answer", "ask", "refuse", "code"]


class Change(BaseModel):
    """One value a plan changes, restated for the trader before anything is edited."""

    target: str  # "momentum.stop_loss", "cascade.MIN_CONFIDENCE", "cascade.technical.enabled"
    before: bool | int | float
    after: bool | int | float

    def text(self) -> str:
        return f"{self.target}: {_show(self.before)} → {_show(self.after)}"


class Reading(BaseModel):
    intent: IntentKind
    action: Action
    language: Language
    strategy: str | None = None
    plan: EditPlan | None = None
    changes: list[Change] = Field(default_factory=list)
    run_id: str | None = None  # approve/reject: the run the message names
    message: str = ""  # the question, refusal or answer, in the message's language
    confidence: float = Field(1.0, ge=0, le=1)
    tier: Literal[1, 2] = 1

    def restated(self) -> str:
        return "; ".join(c.text() for c in self.changes)


def _show(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
