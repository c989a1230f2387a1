"""Moving the lease between slots: the hand-over of a promotion or a rollback (the old slot's
last step without new entries, the lease to the new slot at epoch + 1, the book it loads
checked identical), rollbacks asked for or decided, and the supervisor that restarts a
crashed active slot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import structlog

from commander.deployment import CheckResult, CommitRejected, Deployment, DeploymentError
from commander.history import DeploymentHistory
from commander.protocol import Done, Ready, describe_reply
from commander.runs import Handoff, HandoffRecord, RollbackAnswer, RollbackRecord, SlotRun, other
from commander.slot_runs import SlotRuns
from commander.slots import SlotDied
from commander.state import CommanderState

log = structlog.get_logger("sorte.commander")


class Handover:
    def __init__(self, state: CommanderState, runs: SlotRuns) -> None:
        self.s, self.runs = state, runs

    # -- the hand-over ---------------------------------------------------------------------
    async def finish(self, h: Handoff, fault: SlotRun | None = None) -> None:
        """The active slot has committed its last step (or is dead): move the lease and the book."""
        s = self.s
        s.pending = None
        if h.to.slot not in s.slots or h.to.client.dead:
            log.warning("handoff_cancelled", to=h.to.deployment.id, reason="the target slot is gone")
            if h.inbox_id is not None:
                s.inbox.finish(h.inbox_id, False, "the target slot stopped before the hand-over")
                s.handling.discard(h.inbox_id)
            return
        old = s.active_run() if fault is None else fault
        state = s.lease.current()
        from_slot = state.holder or (old.slot if old else other(h.to.slot))
        last = old.last_done if old is not None and fault is None else None
        t_stop = last.t_recv if isinstance(last, Done) else None
        if h.kind == "promote":
            s.history.transition(h.to.deployment.id, "promoting", h.reason, analysis=h.analysis)
        epoch = s.lease.transfer(from_slot, h.to.slot, state.epoch).epoch
        if s.gateway is not None:  # the account is reconciled before the new holder's first order
            s.gateway.hand_to(h.to.slot, epoch, s.ledger)
        current = s.history.active()
        old_id = current.id if current else 0
        if h.kind == "promote":
            s.history.transition(h.to.deployment.id, "active", h.reason, epoch=epoch)
        else:
            s.history.rollback(old_id, h.to.deployment.id, h.reason, epoch)
        if fault is not None or (old is not None and old.client.dead):
            dead = cast(SlotRun, fault or old)
            await dead.client.kill()
            s.slots.pop(dead.slot, None)
            old = None
        old_book = old.last_done.book if old is not None and old.last_done else None
        h.to.role = "active"  # from here a fault of the new slot is a fault of the active one
        s.warm_until.pop(h.to.slot, None)
        retire_old = None if old is None else (self.demote(old) if h.kind == "promote" else self.runs.stop(old.slot))
        # The new slot takes over while the old one turns to shadow (or stops): two processes.
        ready, _ = await asyncio.gather(
            self.activate(h.to, epoch), retire_old or asyncio.sleep(0), return_exceptions=True
        )
        if h.kind == "promote":
            s.watch = (h.to.deployment.id, s.tick, s.tick + s.cs.watch_bars)
        if isinstance(ready, BaseException):
            if not isinstance(ready, SlotDied):
                raise ready
            await self.on_fault(h.to, f"crash while taking over: {ready}")
            return
        matches = old_book is None or old_book == ready.book
        gap_ms = (ready.t - t_stop) * 1000 if t_stop is not None else None
        s.handoffs.append(
            HandoffRecord(
                kind=h.kind,
                tick=s.tick,
                from_deployment=old_id,
                to_deployment=h.to.deployment.id,
                epoch=epoch,
                gap_ms=gap_ms,
                book_matches=matches,
            )
        )
        if h.kind == "promote":
            s.alerts.emit("deployment_promoted", f"deployment {h.to.deployment.id} is active at epoch {epoch}")
        if h.on_done is not None:
            h.on_done(ready.t)
        if h.inbox_id is not None:
            s.inbox.finish(h.inbox_id, True, f"rolled back to deployment {h.to.deployment.id} at epoch {epoch}")
            s.handling.discard(h.inbox_id)
        if not matches:
            h.to.critical.append(
                CheckResult(name="ledger", kind="critical", outcome="fail", detail="book differs after the hand-over")
            )
            if h.kind == "promote":
                await self.auto_rollback("the book differs after the hand-over")
        log.info("handoff", kind=h.kind, to=h.to.deployment.id, epoch=epoch, gap_ms=gap_ms, tick=s.tick)

    async def activate(self, run: SlotRun, epoch: int) -> Ready:
        ready = await run.client.request(await self.runs.live_role_op("active", epoch), self.s.cs.step_timeout_s)
        if not isinstance(ready, Ready):
            raise SlotDied(describe_reply(ready))
        run.role, run.last_done = "active", ready
        await self.runs.place(run, ready)
        run.deployment = self.s.history.get(run.deployment.id)
        await self.runs.catch_up(run)
        self.s.observer.on_activated(run, ready)
        return ready

    async def demote(self, run: SlotRun) -> None:
        """The replaced slot keeps following the bars in shadow: a rollback is then a hand-over."""
        s = self.s
        try:
            ready = await run.client.request(self.runs.role_op("shadow", 0), s.cs.step_timeout_s)
        except SlotDied:
            ready = None
        if not isinstance(ready, Ready):
            await self.runs.stop(run.slot)
            with contextlib.suppress(DeploymentError):
                s.history.transition(run.deployment.id, "retired", "could not stay warm in shadow")
            return
        run.role, run.since_tick, run.last_done = "shadow", s.tick, ready
        run.deployment = s.history.get(run.deployment.id)

    # -- rollbacks -------------------------------------------------------------------------
    async def take_requests(self) -> None:
        """`sorte rollback` through the inbox: one hand-over at a time, the next request waits a step."""
        s = self.s
        if s.pending is not None:
            return
        for req in s.inbox.pending():
            if s.pending is not None:
                return
            if req.id in s.handling:
                continue
            s.handling.add(req.id)
            try:
                answer = await self.rollback(req.args.get("to"), req.args.get("reason") or "requested", False, req.id)
            except DeploymentError as exc:
                s.inbox.finish(req.id, False, str(exc))
                s.handling.discard(req.id)
                continue
            if answer.outcome != "pending":  # else it finishes with the hand-over
                s.inbox.finish(req.id, True, answer.message)
                s.handling.discard(req.id)

    async def rollback(
        self,
        to: int | None,
        reason: str,
        automatic: bool,
        inbox_id: int | None = None,
        fault: SlotRun | None = None,
    ) -> RollbackAnswer:
        """Give the lease back: at once (or nothing to do), or with the hand-over at the end of
        the next step (``pending``) when the active slot is healthy."""
        s = self.s
        s.observer.on_rollback_decided(to, reason, automatic)
        t0 = time.monotonic()
        current = s.history.active()
        if current is None:
            raise DeploymentError("nothing is active: nothing to roll back")
        if not automatic and (done := nothing_to_roll_back(s.history, to)):
            return RollbackAnswer(outcome="nothing_to_do", message=done)
        target = self.rollback_target(current, to)
        warm = s.slots.get(target.slot)
        is_warm = warm is not None and warm.deployment.id == target.id
        if warm is None or not is_warm:
            warm = await self.cold_start(current, target)
        to_run = warm
        h = Handoff(to_run, "rollback", reason, inbox_id)
        active = s.active_run()

        def note(ready_t: float) -> None:
            died_at = fault.client.died_at if fault is not None else 0.0
            s.rollbacks.append(
                RollbackRecord(
                    tick=s.tick,
                    reason=reason,
                    automatic=automatic,
                    from_deployment=current.id,
                    to_deployment=to_run.deployment.id,
                    warm=is_warm,
                    fault_to_decision_ms=(t0 - died_at) * 1000 if died_at else None,
                    duration_ms=(ready_t - t0) * 1000,
                )
            )

        h.on_done = note
        s.alerts.emit("rollback", f"rolling back deployment {current.id} to {target.id}: {reason}")
        if fault is None and active is not None and not active.client.dead:
            s.pending = h  # a healthy active stops entries for one step first
            return RollbackAnswer(outcome="pending")
        await self.finish(h, fault=fault or active)
        return RollbackAnswer(outcome="done", message=f"rolled back to deployment {to_run.deployment.id}")

    async def auto_rollback(self, reason: str, fault: SlotRun | None = None) -> None:
        """A rollback the commander decides; when none is possible the active slot carries on
        (or, after a fault, is restarted), and operators are told why."""
        try:
            await self.rollback(None, reason, automatic=True, fault=fault)
        except DeploymentError as exc:
            self.s.alerts.emit("rollback_impossible", f"automatic rollback not possible ({exc}): {reason}")
            if fault is not None:
                await self.restart_active(fault, reason)

    def rollback_target(self, current: Deployment, to: int | None) -> Deployment:
        s = self.s
        if to is not None:
            target = s.history.get(to)
            if target.state not in ("warm", "retired"):
                raise DeploymentError(f"deployment {to} is {target.state}; only a warm or retired one can come back")
        else:
            warm = s.warm_run()
            found = s.history.get(warm.deployment.id) if warm else s.history.previous()
            if found is None:
                raise DeploymentError("nothing to roll back to: no earlier deployment may run again")
            target = found
        if s.history.is_rejected(target.commit) or target.commit == current.commit:
            raise CommitRejected(f"deployment {target.id} runs commit {target.commit[:12]}, which cannot come back")
        return target

    async def cold_start(self, current: Deployment, target: Deployment) -> SlotRun:
        """Start the target in the idle slot (a new deployment of its commit if it ran in the
        active one) in shadow, ready for the hand-over."""
        s = self.s
        idle = other(current.slot)
        if s.starting is not None:
            s.starting.cancel()
            s.starting = s.starting_id = None
        if idle in s.slots:
            await self.runs.retire(idle, f"slot needed to roll back to deployment {target.id}")
        if target.slot != idle:  # it ran in the slot that is active now: a new deployment of its commit
            wanted = target.id
            target = s.history.create(target.commit, idle, f"rollback to {wanted}")
            s.history.transition(target.id, "starting", f"rollback to deployment {wanted}")
            s.history.transition(target.id, "promoting", f"rollback to deployment {wanted}")
        return await self.runs.start(target, "shadow")

    # -- faults ----------------------------------------------------------------------------
    async def on_fault(self, run: SlotRun, reason: str) -> None:
        s = self.s
        d = s.history.get(run.deployment.id)
        if run.role == "active":
            if s.watch is not None and s.watch[0] == d.id and s.warm_run() is not None:
                await self.auto_rollback(f"critical fault after promotion: {reason}", fault=run)
            else:
                await self.restart_active(run, reason)
        elif d.state in ("starting", "shadow", "analysing"):
            await self.runs.reject(run, "rejected", f"critical fault in shadow: {reason}")
        else:  # a warm slot lost: the next rollback is a cold one
            await self.runs.stop(run.slot)
            if d.state == "warm":
                s.history.transition(d.id, "retired", f"warm slot lost: {reason}")
            s.alerts.emit("warm_slot_lost", f"deployment {d.id} ({d.slot}) stopped: {reason}")

    async def restart_active(self, run: SlotRun, reason: str) -> None:
        """The supervisor: kill what is left, wait (backoff), start again at the same epoch
        (the lease holder did not change), catch up the missed steps from the ledger."""
        s = self.s
        s.alerts.emit("runtime_crash", f"active slot {run.slot} (deployment {run.deployment.id}): {reason}")
        await run.client.kill()
        s.slots.pop(run.slot, None)
        while not s.stopping.is_set():
            await asyncio.sleep(s.backoff)
            s.backoff = min(s.backoff * 2, s.cs.max_restart_backoff_s)
            s.healthy_ticks = 0
            s.restarts += 1
            try:
                epoch = self.retake(run.slot)
                new = await self.runs.start(run.deployment, "active", epoch)
                new.samples, new.since_tick = run.samples, run.since_tick  # a candidate's window goes on
                await self.runs.catch_up(new)
                log.info("active_restarted", slot=run.slot, deployment=run.deployment.id, restarts=s.restarts)
                return
            except SlotDied as exc:
                s.slots.pop(run.slot, None)
                s.alerts.emit("runtime_crash", f"restarting deployment {run.deployment.id} failed: {exc}")

    def retake(self, slot: str) -> int:
        """A new epoch for the same holder, restarted: whatever its dead process left half done
        can neither commit a step nor have an order sent, and the account is reconciled again."""
        s = self.s
        epoch = s.lease.acquire(slot, s.lease.current().epoch).epoch
        if s.gateway is not None:
            s.gateway.hand_to(slot, epoch, s.ledger)
        return epoch


def nothing_to_roll_back(history: DeploymentHistory, to: int | None) -> str:
    """Why a rollback would change nothing ("" when it would): what makes it idempotent."""
    current = history.active()
    if current is None:
        return ""
    if to is None and history.activated_by_rollback(current.id):
        return f"nothing to do: deployment {current.id} is already the result of a rollback"
    if to == current.id:
        return f"nothing to do: deployment {to} is already active"
    return ""
