"""The agent for the front-ends: start a run, answer its approval, resume it after a crash, list runs.

One LangGraph thread per run id; checkpoints in SQLite under ``<data_dir>/agent/``, so a run
killed at any node continues from its last finished node when it is resumed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command

from sorte import paths
from sorte.agent import journal
from sorte.agent.context import Context, Event, Reader
from sorte.agent.graph import build
from sorte.agent.state import checkpoint_serde
from sorte.agent.views import Decision, RunView
from sorte.config import Settings
from sorte.errors import SorteError


class AgentError(SorteError):
    """A run that does not exist, or a decision for a run that is not waiting for one."""


@asynccontextmanager
async def _graph(settings: Settings, llm: Any, on_event: Event | None, reader: Reader | None) -> AsyncIterator[Any]:
    journal.agent_dir(settings.data_dir)  # created on first use
    db = paths.agent_checkpoints(settings.data_dir)
    own_llm = llm is None
    if own_llm:
        from sorte.llm.build import build_llm

        llm = build_llm(settings)
    ctx = Context(settings, llm, reader=reader) if on_event is None else Context(settings, llm, on_event, reader)
    try:
        async with aiosqlite.connect(str(db)) as conn:
            saver = AsyncSqliteSaver(conn, serde=checkpoint_serde())
            yield build(ctx).compile(checkpointer=saver)
    finally:
        if own_llm:
            await llm.close()


def _notify(settings: Settings, view: RunView) -> RunView:
    """Operators hear of runs that need them or ended (Telegram pushes the alerts file)."""
    from commander.alerts import Alerts
    from commander.status import commander_dir

    alerts = Alerts(commander_dir(settings.data_dir))
    what = view.plan_summary or view.request[:120]
    if view.status == "awaiting_approval":
        alerts.emit("approval_needed", f"run {view.run_id} waits for approval: {what}", run_id=view.run_id)
    elif view.status == "done" and view.outcome == "failed":
        alerts.emit("verdict_failed", f"run {view.run_id} failed: {what}", run_id=view.run_id)
    elif view.status == "done" and view.outcome in ("merged", "rejected"):
        alerts.emit("run_finished", f"run {view.run_id} {view.outcome}: {what}", run_id=view.run_id)
    return view


def _config(run_id: str) -> dict:
    return {"configurable": {"thread_id": run_id}}


async def _view(graph: Any, settings: Settings, run_id: str) -> RunView:
    snapshot = await graph.aget_state(_config(run_id))
    view = journal.load_view(settings.data_dir, run_id) or RunView(run_id=run_id)
    pending = [i for task in snapshot.tasks for i in task.interrupts]
    if pending:
        view.status = "awaiting_approval"
        view.next_node = "approve"
    elif not snapshot.next:
        view.status = "done"
    else:
        view.status = "running"
        view.next_node = ",".join(snapshot.next)
    return view


async def ask(
    settings: Settings,
    text: str,
    *,
    sender: str = "local",
    channel: str = "cli",
    run_id: str | None = None,
    llm: Any = None,
    on_event: Event | None = None,
    reader: Reader | None = None,
) -> RunView:
    """Start a run for ``text``; returns when it ends or waits for approval. ``reader``: the
    trading figures of the status and PnL answers (the front-ends pass the service layer's reading)."""
    from sorte.editing.branches import new_run_id

    text = (text or "").strip()
    if not text:
        raise AgentError("empty request: say what to change, ask a question, or send 'help'")
    if len(text) > 4000:
        raise AgentError(f"request too long ({len(text)} characters, at most 4000)")
    run_id = run_id or new_run_id()
    state = {"run_id": run_id, "request": text, "sender": sender, "channel": channel}
    async with _graph(settings, llm, on_event, reader) as graph:
        await graph.ainvoke(state, _config(run_id), durability="sync")
        view = await _view(graph, settings, run_id)
        target = (await graph.aget_state(_config(run_id))).values.get("target_run")
    if target:  # "aprova" / "reject it": the decision goes to the run that waits for it
        decided = await decide(
            settings,
            target,
            Decision(approve=view.intent == "approve", by=f"{channel}:{sender}"),
            llm=llm,
            on_event=on_event,
            reader=reader,
        )
        view.reply = decided.reply
        journal.save_view(settings.data_dir, view)
        return view
    return _notify(settings, view)


async def decide(
    settings: Settings,
    run_id: str,
    decision: Decision,
    *,
    llm: Any = None,
    on_event: Event | None = None,
    reader: Reader | None = None,
) -> RunView:
    """Approve or reject a run that waits for approval."""
    async with _graph(settings, llm, on_event, reader) as graph:
        view = await _view(graph, settings, run_id)
        if view.status != "awaiting_approval":
            raise AgentError(f"run {run_id} is not waiting for approval (it is {view.status})")
        await graph.ainvoke(Command(resume=decision.model_dump()), _config(run_id), durability="sync")
        return _notify(settings, await _view(graph, settings, run_id))


async def resume(
    settings: Settings, run_id: str, *, llm: Any = None, on_event: Event | None = None, reader: Reader | None = None
) -> RunView:
    """Continue a run that stopped mid-way (a crash): from its last finished node."""
    async with _graph(settings, llm, on_event, reader) as graph:
        snapshot = await graph.aget_state(_config(run_id))
        if not snapshot.values:
            raise AgentError(f"no run {run_id!r} (sorte runs lists them)")
        view = await _view(graph, settings, run_id)
        if view.status == "running":
            await graph.ainvoke(None, _config(run_id), durability="sync")
            view = _notify(settings, await _view(graph, settings, run_id))
        return view


async def resume_all(
    settings: Settings, *, llm: Any = None, on_event: Event | None = None, reader: Reader | None = None
) -> list[RunView]:
    """Continue every run a crash or a restart left half-way (runs waiting for approval keep waiting)."""
    unfinished = [v.run_id for v in journal.list_views(settings.data_dir) if v.status == "running"]
    return [await resume(settings, run_id, llm=llm, on_event=on_event, reader=reader) for run_id in unfinished]


async def pending_approval(settings: Settings, run_id: str, *, llm: Any = None) -> dict | None:
    """What the approval request shows (plan, diff, verdict), or None."""
    async with _graph(settings, llm, None, None) as graph:
        snapshot = await graph.aget_state(_config(run_id))
        for task in snapshot.tasks:
            for item in task.interrupts:
                return dict(item.value)
    return None


def runs(settings: Settings) -> list[RunView]:
    return journal.list_views(settings.data_dir)


def run(settings: Settings, run_id: str) -> RunView:
    view = journal.load_view(settings.data_dir, run_id)
    if view is None:
        raise AgentError(f"no run {run_id!r} (sorte runs lists them)")
    return view
