"""Closing the run: one lesson stored for the next runs to recall (learn), and the reply the
front-end shows (report)."""

from __future__ import annotations

import asyncio

import structlog

from knowledge import Lesson, open_store
from sorte.agent.context import Context
from sorte.agent.nodes.checking import PARAMETER_OPS
from sorte.agent.state import AgentState, Update
from sorte.config import Settings
from sorte.interpret.replies import text

log = structlog.get_logger("sorte.agent")


async def learn(state: AgentState, ctx: Context) -> Update:
    lesson_id = await asyncio.to_thread(_learn, ctx.settings, state)
    return {"lesson_id": lesson_id} if lesson_id else {}


async def report(state: AgentState, ctx: Context) -> Update:
    outcome = state.outcome or "failed"
    reply = state.reply or text("validation_failed", state.language, attempts=0, reasons="no reply")
    log.info("agent.report", run_id=state.run_id, outcome=outcome, pass_at=state.pass_at)
    return {"outcome": outcome, "reply": reply}


def _learn(settings: Settings, state: AgentState) -> str:
    """One lesson per run (a resumed run finds the one it stored)."""
    store = open_store(settings.knowledge, settings.data_dir)
    lesson_id = f"run-{state.run_id}"
    if store.get(lesson_id) is not None:
        return lesson_id
    return store.add(lesson_of(state, lesson_id)).id


def lesson_of(state: AgentState, lesson_id: str) -> Lesson:
    """What was asked, tried and seen, and the rule a later run should keep from it."""
    verdict = state.verdict
    overall = verdict.overall if verdict else "none"
    plan = state.plan_summary or state.request
    outcome = {"merged": "merged", "rejected": "rejected"}.get(state.outcome, "failed")
    rule = {
        "merged": f"{plan}: approved and merged (verdict {overall})",
        "rejected": f"{plan}: rejected by the trader",
    }.get(outcome, f"{plan}: failed validation ({'; '.join(state.failures[:2])[:300]})")
    deltas = {m.metric: float(m.delta) for m in (verdict.metrics if verdict else []) if m.delta is not None}
    ops = {op.op for op in state.plan.ops} if state.plan else set()
    return Lesson(
        id=lesson_id,
        request=state.request,
        strategy=state.strategy or "cascade",
        kind="parameter" if ops <= PARAMETER_OPS else "code",
        plan_summary=plan,
        outcome=outcome,
        verdict=overall,
        metric_deltas=deltas,
        rule=rule,
        commit=state.merged_sha or state.commit or None,
        run_id=state.run_id,
        language=state.language,
    )
