"""The agent's state: what one run knows after each node, typed.

Each field is a LangGraph channel, checkpointed in SQLite after every node; the models in it
(intent, reading, plan, verdict, decision) are stored as themselves and come back as
themselves, so no node re-reads a dict. A checkpoint written when these were dicts still loads:
pydantic reads the dicts into the models.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel, Field

from guardian.verdict import Verdict
from sorte.agent.views import Decision, Intent, Outcome
from sorte.editing.plan import EditPlan
from sorte.interpret.reading import Reading
from sorte.interpret.replies import Language

#: What a node returns: the fields it changed.
Update = dict[str, Any]


class AgentState(BaseModel):
    run_id: str
    request: str
    sender: str = "local"
    channel: str = "cli"
    language: Language = "en"
    outcome: Outcome = ""  # set once the run knows how it ends: the graph then goes to report
    reply: str = ""
    intent: Intent | None = None
    reading: Reading | None = None  # the interpreter's reading of the message
    lessons: list[str] = Field(default_factory=list)
    plan: EditPlan | None = None
    plan_errors: list[str] = Field(default_factory=list)
    attempt: int = 0
    failures: list[str] = Field(default_factory=list)
    branch: str = ""
    commit: str = ""
    diff: str = ""
    verdict: Verdict | None = None
    pass_at: dict[str, bool] = Field(default_factory=dict)
    decision: Decision | None = None
    merged_sha: str = ""
    pr_url: str = ""
    pr_number: int | None = None
    target_run: str = ""  # approve/reject by message: the run that waits for the decision
    deploy_id: str = ""
    lesson_id: str = ""

    @property
    def sender_id(self) -> str:
        """channel:id, as the settings' allow-lists name a sender."""
        return f"{self.channel}:{self.sender}"

    @property
    def read_plan(self) -> bool:
        """The plan came from the interpreter (a parameter or cascade change), not from the coder."""
        return self.reading is not None and self.reading.action == "edit" and self.plan is not None

    @property
    def strategy(self) -> str | None:
        return self.intent.strategy if self.intent else None

    @property
    def plan_summary(self) -> str:
        return self.plan.summary if self.plan else ""

    def need_intent(self) -> Intent:
        """The intent, for the nodes after interpret (which always sets it)."""
        if self.intent is None:
            raise ValueError(f"run {self.run_id}: no intent yet")
        return self.intent

    def need_plan(self) -> EditPlan:
        """The plan, for the nodes after plan or optimise (which always set it)."""
        if self.plan is None:
            raise ValueError(f"run {self.run_id}: no plan yet")
        return self.plan

    def need_verdict(self) -> Verdict:
        """The verdict, for the nodes after validate (which always sets it)."""
        if self.verdict is None:
            raise ValueError(f"run {self.run_id}: no verdict yet")
        return self.verdict


def checkpoint_serde() -> JsonPlusSerializer:
    """The checkpointer's serializer: the state's models are read back as themselves, and only
    they (LangGraph otherwise reads any type back, with a warning that it will stop doing so)."""
    return JsonPlusSerializer(allowed_msgpack_modules=checkpointed_models())


def checkpointed_models() -> set[tuple[str, str]]:
    """(module, class) of every model the state holds: the checkpointer reads back these, and
    only these, as models."""
    found = {(AgentState.__module__, AgentState.__name__)}
    for field in AgentState.model_fields.values():
        for kind in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found.add((kind.__module__, kind.__name__))
    return found
