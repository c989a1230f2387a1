"""Making and checking the change: the plan applied and committed on the run's branch (edit),
the guardian's verdict on it (validate), and the trader's decision (approve: a LangGraph
interrupt, unless the auto-approve policy covers the change)."""

from __future__ import annotations

import asyncio

from langgraph.types import interrupt

from sorte.agent.context import Context
from sorte.agent.state import AgentState, Update
from sorte.agent.views import Decision
from sorte.config import Settings
from sorte.editing import branches as editing
from sorte.editing.plan import EditPlan
from sorte.errors import SorteError
from sorte.interpret.replies import text

#: Operations that change a declared value, never code: the only ones the policy may approve.
PARAMETER_OPS = {"set_param", "set_stage", "set_min_confidence"}


async def edit(state: AgentState, ctx: Context) -> Update:
    try:
        outcome = await asyncio.to_thread(
            editing.edit_on_branch, ctx.settings, state.need_plan(), state.request, state.run_id, False
        )
    except SorteError as exc:
        return {"outcome": "refused", "reply": text("change_refused", state.language, reason=str(exc))}
    if not outcome.kept:
        reason = "the plan changes nothing"
        return {"outcome": "refused", "reply": text("change_refused", state.language, reason=reason)}
    # The branch's commit: a resumed run finds its plan already committed (commit None).
    commit = outcome.commit or await asyncio.to_thread(editing.branch_tip, ctx.settings, outcome.branch)
    return {"branch": outcome.branch, "commit": commit, "diff": outcome.branch_diff}


async def validate(state: AgentState, ctx: Context) -> Update:
    # Imported when a change is validated: the guardian's gates load pandas and the sandbox client.
    from guardian.validate import validate as run_guardian

    verdict = await asyncio.to_thread(run_guardian, ctx.settings, state.branch)
    attempt = state.attempt
    pass_at = {**state.pass_at, str(attempt): verdict.overall == "pass"}
    update: Update = {"verdict": verdict, "pass_at": pass_at}
    if verdict.overall == "fail":
        update["failures"] = verdict.reasons() + [f"{f.where()} {f.message}".strip() for f in verdict.findings[:10]]
        if attempt >= ctx.settings.agent.max_attempts or state.read_plan:
            reasons = "; ".join(verdict.reasons())
            reply = text("validation_failed", state.language, attempts=attempt, reasons=reasons)
            update |= {"outcome": "failed", "reply": reply}
    return update


async def approve(state: AgentState, ctx: Context) -> Update:
    plan = state.need_plan()
    if auto_approvable(ctx.settings, plan, state):
        return {"decision": Decision(approve=True, by="policy:auto_approve")}
    verdict = state.need_verdict().to_text()
    payload = {
        "run_id": state.run_id,
        "request": state.request,
        "summary": plan.summary,
        "plan": plan.model_dump(mode="json"),
        "diff": state.diff,
        "verdict": verdict,
        "language": state.language,
        "question": text("approval", state.language, summary=plan.summary, verdict=verdict),
    }
    return {"decision": Decision.model_validate(interrupt(payload))}


def auto_approvable(settings: Settings, plan: EditPlan, state: AgentState) -> bool:
    """Only where nothing is at stake: a passing parameter change, read without a model, in paper mode."""
    return (
        settings.agent.auto_approve
        and settings.runtime.mode == "paper"
        and state.need_verdict().overall == "pass"
        and all(op.op in PARAMETER_OPS for op in plan.ops)
        and (state.reading.tier if state.reading else 1) == 1
    )
