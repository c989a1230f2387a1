"""The deployment pipeline, carried on between steps: a requested commit starts in the idle
slot, runs in shadow for ``shadow_bars`` steps, is judged against the active slot on the same
steps (``commander.analysis``), and once promoted is watched for ``watch_bars`` steps against
the warm slot it replaced (a failure rolls back). Slots kept warm long enough are retired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from commander.analysis import judge
from commander.deployment import DeploymentError, DeploymentState
from commander.handover import Handover
from commander.runs import Handoff, SlotRun, other
from commander.slot_runs import SlotRuns
from commander.slots import SlotDied
from commander.state import CommanderState

log = structlog.get_logger("sorte.commander")
WATCH_PASSED = "post-promotion watch passed"
WATCH_ENDED = "post-promotion watch ended early: no warm slot left to compare with"


class Pipeline:
    def __init__(self, state: CommanderState, runs: SlotRuns, handover: Handover) -> None:
        self.s, self.runs, self.handover = state, runs, handover

    async def between_steps(self) -> None:
        s = self.s
        for run in list(s.slots.values()):
            if not run.client.check_heartbeat() and run.slot in s.slots:
                await self.handover.on_fault(run, f"crash: {run.client.dead}")
        await self.handover.take_requests()
        await self.advance_candidate()
        await self.advance_watch()
        for slot, until in list(s.warm_until.items()):
            if s.tick >= until and s.watch is None and slot in s.slots:
                await self.runs.retire(slot, "kept warm long enough")

    # -- request -> shadow -> judgement ----------------------------------------------------
    async def advance_candidate(self) -> None:
        s = self.s
        if s.starting is not None and not s.feed.live:
            # A replay waits for the candidate: the same bars then give the same judgement.
            await asyncio.wait({s.starting}, timeout=s.cs.start_timeout_s + 5)
        cand = s.candidate()
        if cand is None and s.starting is None:
            await self.start_next()
        elif s.starting is not None and s.starting.done():
            await self.shadow_started()
        elif cand is not None and s.pending is None:
            active = s.active_run()
            if active is not None and len(cand.window(cand.since_tick)) >= s.cs.shadow_bars:
                await self.judge_candidate(cand, active)

    async def start_next(self) -> None:
        s = self.s
        waiting = s.history.in_state("requested", "starting", "shadow")
        active = s.history.active()
        if not waiting or active is None or s.watch is not None or s.pending is not None:
            return
        d = waiting[0]
        if s.history.is_rejected(d.commit):
            s.history.transition(d.id, "rejected", f"commit {d.commit[:12]} was rejected or rolled back before")
            return
        idle = other(active.slot)
        if d.slot != idle:
            d = s.history.reassign_slot(d.id, idle)
        if idle in s.slots:
            await self.runs.retire(idle, f"slot needed by deployment {d.id}")
        if d.state == "requested":
            d = s.history.transition(d.id, "starting", "starting in the idle slot")
        s.starting, s.starting_id = asyncio.create_task(self.runs.launch(d)), d.id

    async def shadow_started(self) -> None:
        s = self.s
        task, d = s.starting, s.history.get(s.starting_id or 0)
        s.starting = s.starting_id = None
        assert task is not None
        try:
            await self.runs.assign(task.result(), d, "shadow")
        except (SlotDied, DeploymentError, OSError) as exc:
            s.history.transition(d.id, "failed", f"could not start: {exc}")
            s.alerts.emit("deployment_failed", f"deployment {d.id} could not start: {exc}")
            return
        if d.state == "starting":
            s.history.transition(d.id, "shadow", "running in shadow next to the active slot")
        log.info("shadow_started", deployment=d.id, slot=d.slot, tick=s.tick)

    async def judge_candidate(self, cand: SlotRun, active: SlotRun) -> None:
        s = self.s
        s.history.transition(cand.deployment.id, "analysing", "shadow window complete")
        start = cand.since_tick
        result = judge(
            cand.critical, active.window(start), cand.window(start), s.cs.analysis, started_at=datetime.now(UTC)
        )
        if result.verdict == "pass":
            s.pending = Handoff(cand, "promote", "analysis passed", analysis=result)
        else:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if c.outcome != "pass")
            state: DeploymentState = "rejected" if result.verdict == "fail" else "inconclusive"
            await self.runs.reject(cand, state, f"analysis {result.verdict}: {failed}", analysis=result)

    # -- the post-promotion watch ------------------------------------------------------------
    async def advance_watch(self) -> None:
        s = self.s
        if s.watch is None:
            return
        deployment_id, start, until = s.watch
        active, warm = s.active_run(), s.warm_run()
        if active is None or active.deployment.id != deployment_id:
            s.watch = None  # rolled back, or restarting: nothing is left to watch
            return
        if warm is None:
            s.watch = None
            s.history.note(deployment_id, WATCH_ENDED, outcome="watch_ended")
            return
        if s.tick < until:
            return
        result = judge([], warm.window(start), active.window(start), s.cs.analysis, datetime.now(UTC))
        s.watch = None
        if result.verdict == "fail":
            failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if c.outcome == "fail")
            await self.handover.auto_rollback(f"post-promotion analysis failed: {failed}")
        else:
            log.info("watch_passed", deployment=deployment_id, verdict=result.verdict, tick=s.tick)
            s.history.note(deployment_id, WATCH_PASSED, outcome="watch_passed")
            s.warm_until[warm.slot] = s.tick + s.cs.warm_bars
