"""Actions for the front-ends: ask the agent, approve or reject a run, roll back, pause and
resume new entries, accept a live account's changed balances. Each checks the caller's role
first and leaves one audit line, refusals included; a refused or failed action changes nothing."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from commander.deployment import DeploymentError
from commander.inbox import commander_running
from commander.reconcile import Acceptance, Reconciliation, read_reconciliation, write_acceptance
from sorte import paths
from sorte.agent import runs as agent
from sorte.agent.context import Event
from sorte.agent.views import Decision, RunView
from sorte.config import Settings
from sorte.errors import AccountError, SorteError
from sorte.runtime.control import write_control
from sorte.service import reading
from sorte.service.access import Principal, audit, require_operator
from sorte.service.views import ActionResult

ACCEPT_POLL_S = 0.2
MAX_REASON = 300
MAX_DEPLOYMENT_ID = 2**62  # beyond this SQLite cannot even store it
# Run ids are slugs (20261122-201500-a1b2c3); the pattern also keeps a path out of the journal's file names.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


async def ask(
    settings: Settings, who: Principal, text: str, *, llm: Any = None, on_event: Event | None = None
) -> RunView:
    """A request in plain words to the agent (operators only): returns when the run ends or
    waits for approval."""
    require_operator(settings.data_dir, who, "ask", text=text[:200])
    try:
        view = await agent.ask(
            settings, text, sender=who.id, channel=who.channel, llm=llm, on_event=on_event, reader=reading
        )
    except SorteError as exc:  # refused by the agent (too long, not allowed): audited like any refusal
        audit(settings.data_dir, who.sender, "ask", False, error=str(exc)[:300], chars=len(text))
        raise
    audit(settings.data_dir, who.sender, "ask", True, run_id=view.run_id, status=view.status, outcome=view.outcome)
    return view


async def approve(
    settings: Settings,
    who: Principal,
    run_id: str,
    comment: str = "",
    *,
    llm: Any = None,
    on_event: Event | None = None,
) -> RunView:
    return await _decide(settings, who, run_id, True, comment, llm, on_event)


async def reject(
    settings: Settings,
    who: Principal,
    run_id: str,
    comment: str = "",
    *,
    llm: Any = None,
    on_event: Event | None = None,
) -> RunView:
    return await _decide(settings, who, run_id, False, comment, llm, on_event)


async def _decide(
    settings: Settings, who: Principal, run_id: str, yes: bool, comment: str, llm: Any, on_event: Event | None
) -> RunView:
    action = "approve" if yes else "reject"
    require_operator(settings.data_dir, who, action, run_id=run_id[:100])
    if not RUN_ID.fullmatch(run_id):
        audit(settings.data_dir, who.sender, action, False, reason="not a run id", run_id=run_id[:100])
        raise SorteError(f"{run_id[:100]!r} is not a run id (they look like 20261122-201500-a1b2c3)")
    decision = Decision(approve=yes, by=who.sender, comment=comment[:MAX_REASON])
    try:
        view = await agent.decide(settings, run_id, decision, llm=llm, on_event=on_event, reader=reading)
    except SorteError as exc:
        audit(settings.data_dir, who.sender, action, False, run_id=run_id, error=str(exc))
        raise
    audit(settings.data_dir, who.sender, action, True, run_id=run_id, outcome=view.outcome)
    return view


async def rollback(
    settings: Settings,
    who: Principal,
    to: int | None = None,
    reason: str = "",
    progress: Callable[[str], None] | None = None,
) -> ActionResult:
    """Give the lease back to the previous deployment (or ``to``); raises DeploymentError
    (nothing written) for a bad target, RequestFailed when the commander could not do it.
    ``progress`` gets the commander's step messages (from a worker thread)."""
    from commander.operations import rollback as commander_rollback

    valid = to is None or (isinstance(to, int) and not isinstance(to, bool) and 0 < to <= MAX_DEPLOYMENT_ID)
    shown = to if valid else repr(to)[:40]
    require_operator(settings.data_dir, who, "rollback", to=shown)
    if not valid:
        audit(settings.data_dir, who.sender, "rollback", False, to=shown, reason="not a deployment id")
        raise DeploymentError(f"deployment id must be a positive number up to 2**62, got {shown}")
    reason = (reason or "").strip()[:MAX_REASON] or f"manual rollback by {who.sender}"
    try:  # the commander's own waiting loop polls files: keep it off the event loop
        message = await asyncio.to_thread(commander_rollback, settings, to, reason, progress)
    except SorteError as exc:
        audit(settings.data_dir, who.sender, "rollback", False, to=to, error=str(exc))
        raise
    audit(settings.data_dir, who.sender, "rollback", True, to=to, reason=reason, result=message)
    return ActionResult(ok=True, action="rollback", message=message, detail={"to": to, "reason": reason})


def pause(settings: Settings, who: Principal) -> ActionResult:
    """Stop new entries (exits, stops and take-profits keep working); the trading slot reads it between steps."""
    return _set_paused(settings, who, True)


def resume(settings: Settings, who: Principal) -> ActionResult:
    return _set_paused(settings, who, False)


def _set_paused(settings: Settings, who: Principal, paused: bool) -> ActionResult:
    action = "pause" if paused else "resume"
    require_operator(settings.data_dir, who, action)
    write_control(paths.control_file(settings.data_dir), paused=paused)
    audit(settings.data_dir, who.sender, action, True)
    message = "new entries stopped; open positions are still managed" if paused else "new entries allowed again"
    return ActionResult(ok=True, action=action, message=message, detail={"paused": paused})


async def accept_balances(
    settings: Settings, who: Principal, wait_s: float = 120.0, progress: Callable[[str], None] | None = None
) -> ActionResult:
    """Take the exchange balances the last reconciliation found different as right (a deposit,
    a withdrawal, a trade by hand): the commander moves its baseline by the difference at its
    next reconciliation, only if the exchange still holds exactly those amounts. Raises
    AccountError (nothing written) when there is nothing to accept. Waits up to ``wait_s``
    for a running commander to apply it."""
    require_operator(settings.data_dir, who, "accept_balances")
    folder = paths.account_dir(settings.data_dir)
    last = read_reconciliation(folder)
    problem = _nothing_to_accept(last)
    if problem or last is None:
        audit(settings.data_dir, who.sender, "accept_balances", False, reason=problem)
        raise AccountError(problem)
    request = Acceptance(balances={b.asset: b.exchange for b in last.balances}, by=who.sender, at=time.time())
    write_acceptance(folder, request)
    audit(settings.data_dir, who.sender, "accept_balances", True, balances=request.balances)
    shown = ", ".join(f"{a} {v:.8g}" for a, v in request.balances.items())
    say = progress or (lambda _: None)
    say(f"accepting {shown}")
    result = await asyncio.to_thread(_applied, settings, request, wait_s, say)
    return ActionResult(ok=True, action="accept_balances", message=result, detail={"balances": request.balances})


def _nothing_to_accept(last: Reconciliation | None) -> str:
    if last is None:
        return "no live account was reconciled yet: there is nothing to accept"
    if last.ok:
        return f"the account matched the ledger at epoch {last.epoch}: there is nothing to accept"
    if not last.balances:
        return (
            "no balance differs; what differs cannot be accepted, only mended at the exchange "
            "(cancel an order Sorte did not place): " + "; ".join(last.differences)
        )
    return ""


def _applied(settings: Settings, request: Acceptance, wait_s: float, say: Callable[[str], None]) -> str:
    """What became of the request: the first reconciliation after it, if a commander runs."""
    folder, deadline = paths.account_dir(settings.data_dir), time.monotonic() + wait_s
    if commander_running(paths.commander_dir(settings.data_dir)):
        say("a commander is running: waiting for its next reconciliation")
    while commander_running(paths.commander_dir(settings.data_dir)) and time.monotonic() < deadline:
        done = read_reconciliation(folder)
        if done is not None and done.at > request.at:
            if done.ok:
                return f"balances accepted; {done.describe()}: trading resumes"
            return f"reconciled again, still refused: {'; '.join(done.differences)}"
        time.sleep(ACCEPT_POLL_S)
    if commander_running(paths.commander_dir(settings.data_dir)):
        return f"recorded; the commander did not reconcile within {wait_s:g} s (`sorte status` shows when it does)"
    return "recorded; no commander is running: the next one applies it when it reconciles on start"
