"""What the agent read from a message (Intent) and what it shows (RunView, Decision)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sorte.interpret.reading import IntentKind
from sorte.interpret.replies import Language

RunStatus = Literal["running", "awaiting_approval", "done"]
Outcome = Literal["merged", "rejected", "failed", "refused", "unauthorised", "answered", "clarify", "interrupted", ""]


class Intent(BaseModel):
    """What a message is about, as the interpreter (``sorte.interpret``) read it."""

    kind: IntentKind = Field(
        description="change: edit a strategy or the cascade; optimise: tune a strategy's parameters; explain: a "
        "question about strategies or results; status; rollback; approve/reject a pending change; help; "
        "unclear: not enough to act on"
    )
    strategy: str | None = Field(None, description="The strategy the message is about, if any (e.g. momentum)")
    language: Language = Field(description="pt if the message is in Portuguese, else en")
    summary: str = Field("", max_length=300, description="The request restated in one short English sentence")
    question: str | None = Field(
        None, max_length=300, description="When kind is unclear: one clarifying question, in the user's language"
    )


class Decision(BaseModel):
    """A human's answer to an approval request."""

    approve: bool
    by: str = "cli:local"
    comment: str = ""


class RunView(BaseModel):
    """A run as the front-ends show it."""

    run_id: str
    request: str = ""
    sender: str = ""
    status: RunStatus = "running"
    outcome: Outcome = ""
    intent: str = ""
    strategy: str | None = None
    language: Language = "en"
    reply: str = ""
    plan_summary: str = ""
    plan: dict | None = None
    branch: str = ""
    commit: str = ""
    diff: str = ""
    verdict: dict | None = None
    verdict_text: str = ""
    attempts: int = 0
    pass_at: dict[str, bool] = Field(default_factory=dict)
    merged_sha: str = ""
    pr_url: str = ""
    deploy_id: str = ""
    next_node: str = ""
    updated_at: str = ""
