"""Every node of a run, recorded: an audit line as it enters and leaves (or fails, or stops for
approval), a progress event for the front-end, and the run's view saved after it."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Protocol

from guardian.verdict import Verdict
from sorte.agent import journal
from sorte.agent.context import Context
from sorte.agent.state import AgentState, Update
from sorte.agent.views import RunStatus, RunView


class Node(Protocol):
    def __call__(self, state: AgentState) -> Awaitable[Update]: ...


def recorded(name: str, node: Node, ctx: Context) -> Node:
    data_dir = ctx.settings.data_dir

    async def run(state: AgentState) -> Update:
        journal.audit(data_dir, state.run_id, name, "enter")
        ctx.on_event(name, "enter", {})
        t0 = time.perf_counter()
        try:
            update = await node(state)
        except Exception as exc:
            # LangGraph's interrupt is an exception too: it is not a failure.
            kind = "interrupt" if type(exc).__name__ == "GraphInterrupt" else "error"
            journal.audit(data_dir, state.run_id, name, kind, error=str(exc)[:300])
            if kind == "interrupt":
                journal.save_view(data_dir, run_view(state, "awaiting_approval", name))
            raise
        elapsed = round(time.perf_counter() - t0, 3)
        journal.audit(data_dir, state.run_id, name, "leave", duration_s=elapsed, outcome=update.get("outcome"))
        ctx.on_event(name, "leave", {"duration_s": elapsed, **{k: update[k] for k in ("outcome",) if k in update}})
        after = state.model_copy(update=update)
        journal.save_view(data_dir, run_view(after, "done" if name == "report" else "running", name))
        return update

    return run


def run_view(state: AgentState, status: RunStatus, node: str) -> RunView:
    """The run as the front-ends show it (the verdict with its overall and text, as JSON)."""
    verdict = state.verdict
    return RunView(
        run_id=state.run_id,
        request=state.request,
        sender=state.sender,
        status=status,
        outcome=state.outcome,
        intent=state.intent.kind if state.intent else "",
        strategy=state.strategy,
        language=state.language,
        reply=state.reply,
        plan_summary=state.plan_summary,
        plan=state.plan.model_dump(mode="json") if state.plan else None,
        branch=state.branch,
        commit=state.commit,
        diff=state.diff,
        verdict=_verdict_data(verdict) if verdict else None,
        verdict_text=verdict.to_text() if verdict else "",
        attempts=state.attempt,
        pass_at=state.pass_at,
        merged_sha=state.merged_sha,
        pr_url=state.pr_url,
        deploy_id=state.deploy_id,
        next_node=node,
    )


def _verdict_data(verdict: Verdict) -> dict:
    return {**verdict.model_dump(mode="json"), "overall": verdict.overall, "text": verdict.to_text()}
