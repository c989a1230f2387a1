"""Knowledge's own models: a lesson is what one agent run taught."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

Outcome = Literal["merged", "rejected", "failed", "abandoned", "rolled_back", "deployed"]
Verdict = Literal["pass", "fail", "inconclusive", "none"]


def _now() -> datetime:
    return datetime.now(UTC)


def new_lesson_id() -> str:
    return uuid.uuid4().hex[:16]


class Lesson(BaseModel):
    """One run's outcome, distilled: what was asked, what was tried, how it went, the rule learned."""

    model_config = {"extra": "forbid"}

    id: str = Field(default_factory=new_lesson_id)
    created_at: datetime = Field(default_factory=_now, description="When the lesson was first learned")
    updated_at: datetime = Field(default_factory=_now, description="When it was last seen (merges move it)")
    request: str = Field(min_length=1, description="What the trader asked, verbatim")
    strategy: str = Field(min_length=1, description="The strategy the request was about ('cascade' for the cascade)")
    kind: str = Field("parameter", description="The kind of change: parameter, rule, indicator, new_strategy, ...")
    plan_summary: str = Field("", description="What was tried: the edit plan in one line")
    outcome: Outcome
    verdict: Verdict = "none"
    metric_deltas: dict[str, float] = Field(
        default_factory=dict, description="Candidate minus baseline, e.g. {'sharpe': 0.12, 'max_drawdown': -0.01}"
    )
    rule: str = Field(min_length=1, description="The lesson learned, one sentence")
    commit: str | None = None
    run_id: str | None = None
    language: str = Field("en", description="The request's language (ISO 639-1)")
    times_seen: int = Field(1, ge=1, description="How many runs taught this lesson (near duplicates merged)")

    def document(self) -> str:
        """The text embedded for recall: the request and the rule, which is what a new request resembles."""
        return f"{self.strategy}: {self.request}\n{self.rule}"
