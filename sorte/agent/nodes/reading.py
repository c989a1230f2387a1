"""Reading the message: who sent it (receive), what it asks (interpret), and the answers that
change no code (answer: status, PnL, settings, lessons, help, rollback, approve/reject by message)."""

from __future__ import annotations

import asyncio

import structlog

from sorte import paths
from sorte.agent import answers, journal
from sorte.agent.context import Context
from sorte.agent.state import AgentState, Update
from sorte.agent.views import Intent
from sorte.errors import SorteError
from sorte.interpret import build_catalogue
from sorte.interpret import interpret as read_message
from sorte.interpret.constrained import ROLE
from sorte.interpret.replies import Language, language, text
from sorte.llm.embedded import only_embedded

log = structlog.get_logger("sorte.agent")


async def receive(state: AgentState, ctx: Context) -> Update:
    lang = language(state.request)
    if not ctx.settings.may_command(state.sender_id):
        log.warning("agent.unauthorised", sender=state.sender_id, run_id=state.run_id)
        return {"language": lang, "outcome": "unauthorised", "reply": text("unauthorised", lang)}
    return {"language": lang, "attempt": 0, "pass_at": {}, "failures": []}


async def interpret(state: AgentState, ctx: Context) -> Update:
    """The catalogue-grounded interpreter: tier 1 with no model, tier 2 only where it is unsure."""
    catalogue = await asyncio.to_thread(build_catalogue, paths.repo_root(ctx.settings))
    weak = only_embedded(ctx.settings.llm, ROLE)
    reading = await read_message(state.request, catalogue, ctx.llm, weak_model=weak)
    lang = reading.language
    intent = Intent(kind=reading.intent, strategy=reading.strategy, language=lang, summary=reading.restated()[:300])
    update: Update = {"intent": intent, "language": lang, "reading": reading}
    ctx.on_event("interpret", "reading", {"action": reading.action, "tier": reading.tier, "text": reading.message})
    if reading.action == "edit" and reading.plan is not None:
        update["plan"] = reading.plan
    elif reading.action == "code":
        if only_embedded(ctx.settings.llm, "coder"):
            update |= {"outcome": "refused", "reply": text("coder_missing", lang)}
    elif reading.action == "ask":
        update |= {"outcome": "clarify", "reply": reading.message}
    elif reading.action == "refuse":
        update |= {"outcome": "refused", "reply": reading.message}
    elif reading.intent == "change":  # already so: nothing to run
        update |= {"outcome": "answered", "reply": reading.message}
    if reading.intent in ("approve", "reject", "rollback") and reading.tier != 1:
        update |= {"outcome": "clarify", "reply": text("help", lang)}  # never on a model's guess
    return update


async def answer(state: AgentState, ctx: Context) -> Update:
    """Everything that changes no code, answered from the trading figures, the catalogue and the store."""
    intent = state.need_intent()
    lang = intent.language
    if intent.kind in ("approve", "reject"):
        return _pending_target(ctx, lang, state)
    if intent.kind == "rollback":
        return await _rollback(ctx, lang, state)
    if intent.kind == "status":
        reply = await asyncio.to_thread(answers.status, ctx.settings, ctx.reader, lang, state.run_id)
    elif intent.kind == "pnl":
        reply = await asyncio.to_thread(answers.pnl, ctx.settings, ctx.reader, lang)
    elif intent.kind == "lessons":
        reply = await asyncio.to_thread(answers.lessons, ctx.settings, intent.strategy, lang)
    elif intent.kind == "explain":
        catalogue = await asyncio.to_thread(build_catalogue, paths.repo_root(ctx.settings))
        reply = answers.explain(catalogue, intent.strategy, lang)
    else:
        reply = text("help", lang)
    return {"outcome": "answered", "reply": reply}


def _pending_target(ctx: Context, lang: Language, state: AgentState) -> Update:
    """The run an approve/reject message is about: the one named in it, else the only one waiting."""
    waiting = [
        v.run_id
        for v in journal.list_views(ctx.settings.data_dir)
        if v.status == "awaiting_approval" and v.run_id != state.run_id
    ]
    named = [run_id for run_id in waiting if run_id in state.request]
    if len(named) == 1 or len(waiting) == 1:
        target = (named or waiting)[0]
        return {"outcome": "answered", "target_run": target, "reply": target}
    key = "nothing_waiting" if not waiting else "which_run"
    return {"outcome": "answered", "reply": text(key, lang, runs=", ".join(waiting))}


async def _rollback(ctx: Context, lang: Language, state: AgentState) -> Update:
    """Through the commander: a lease hand-over back to the previous deployment (idempotent)."""
    # Imported when asked: the commander's service loads its engine (a second).
    from commander.operations import rollback

    reason = f"asked by {state.sender_id} (run {state.run_id}): {state.request[:200]}"
    try:
        result = await asyncio.to_thread(rollback, ctx.settings, None, reason)
    except SorteError as exc:
        return {"outcome": "failed", "reply": text("rollback_failed", lang, reason=str(exc)[:300])}
    return {"outcome": "answered", "reply": text("rolled_back", lang, result=result)}
