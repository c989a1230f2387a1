"""Starting, feeding and stopping the commander's slots: a deployment's process in its own
worktree, its role, the steps it missed, its results, and its end (retired or rejected)."""

from __future__ import annotations

import asyncio
import time

from commander.analysis import StepSample
from commander.backends import SlotSpec
from commander.deployment import AnalysisResult, Deployment, DeploymentState
from commander.protocol import (
    Done,
    OrderReport,
    Ready,
    Role,
    RoleOp,
    StepOp,
    bar_row,
    describe_reply,
    settings_payload,
)
from commander.runs import SlotRun
from commander.slots import SlotClient, SlotDied, launch, new_token, socket_path
from commander.state import CommanderState
from commander.worktree import ensure_worktree


class SlotRuns:
    def __init__(self, state: CommanderState) -> None:
        self.s = state

    def role_op(self, role: Role, epoch: int) -> RoleOp:
        warmup = self.s.feed.warmup(self.s.feed_last)
        return RoleOp(role=role, epoch=epoch, settings=settings_payload(self.s.settings), warmup=warmup)

    async def launch(self, d: Deployment) -> SlotClient:
        s = self.s
        assert s.socket_dir is not None
        t0 = time.monotonic()
        worktree = await asyncio.to_thread(ensure_worktree, s.repo_root, d.commit, s.dir / "worktrees")
        spec = SlotSpec(
            slot=d.slot,
            deployment_id=d.id,
            commit=d.commit,
            worktree=worktree,
            socket=socket_path(s.socket_dir, d.slot),
            commander_dir=s.dir,
            token=new_token(),
            heartbeat_s=s.cs.heartbeat_s,
            log_file=s.dir / "logs" / f"{d.slot}-{d.id}.log",
        )
        client = await launch(s.backend, spec, s.cs.start_timeout_s, s.cs.heartbeat_timeout_s)
        s.observer.on_slot_launched(d, time.monotonic() - t0)
        return client

    async def live_role_op(self, role: Role, epoch: int) -> RoleOp:
        """The role, with the exchange's view of the open orders for a live account's holder."""
        op = self.role_op(role, epoch)
        if role == "active":
            op.orders = await self.order_reports()
        return op

    async def assign(self, client: SlotClient, d: Deployment, role: Role, epoch: int = 0) -> SlotRun:
        """Give a started slot its role; it loads the book from the ledger."""
        ready = await client.request(await self.live_role_op(role, epoch), self.s.cs.start_timeout_s)
        if not isinstance(ready, Ready):
            await client.kill()
            raise SlotDied(describe_reply(ready))
        run = SlotRun(client, d, role, since_tick=self.s.tick)
        run.last_done = ready
        self.s.slots[d.slot] = run
        await self.place(run, ready)
        return run

    async def start(self, d: Deployment, role: Role, epoch: int = 0) -> SlotRun:
        client = await self.launch(d)
        return await self.assign(client, d, role, epoch)

    async def stop(self, slot: str) -> None:
        run = self.s.slots.pop(slot, None)
        if run is not None:
            await run.client.stop()

    async def catch_up(self, run: SlotRun) -> None:
        """Send a (re)started active slot the steps its ledger cursor has not seen yet."""
        cursor = run.last_done.cursor if run.last_done is not None else {}
        missed = [(t, bars) for t, bars in self.s.recent if any(b.seq > cursor.get(b.symbol, -1) for b in bars)]
        for tick, bars in missed:
            rows, entries = [bar_row(b) for b in bars], self.s.entries_allowed()
            op = StepOp(tick=tick, bars=rows, entries=entries, orders=await self.order_reports())
            reply = await run.client.request(op, self.s.cs.step_timeout_s)
            if not isinstance(reply, Done):
                raise SlotDied(describe_reply(reply))
            self.record(run, reply, replace=True)
            await self.place(run, reply)

    # -- a live account ----------------------------------------------------------------------
    async def order_reports(self) -> list[OrderReport] | None:
        """The exchange's view of the active book's open orders (None: a paper account)."""
        s = self.s
        return None if s.gateway is None else await s.gateway.reports(s.ledger)

    async def place(self, run: SlotRun, reply: Done | Ready) -> None:
        """The orders the active slot committed in this step, to the exchange (fenced)."""
        s = self.s
        if s.gateway is not None and reply.orders:
            if run.role != "active":  # a shadow's book is paper: nothing of it is ever sent
                s.gateway.rejected_stale += len(reply.orders)
                return
            await s.gateway.place(run.slot, reply.orders, s.ledger)

    def record(self, run: SlotRun, reply: Done, replace: bool = False) -> None:
        if replace:
            while run.samples and run.samples[-1].tick >= reply.tick:
                run.samples.pop()
        sample = StepSample(
            tick=reply.tick,
            latency_ms=reply.latency_ms,
            errors=reply.errors,
            equity=reply.equity,
            pnl=reply.pnl,
        )
        run.samples.append(sample)
        run.last_done = reply

    async def retire(self, slot: str, reason: str) -> None:
        s = self.s
        run = s.slots.get(slot)
        s.warm_until.pop(slot, None)
        if run is None or run.role == "active":
            return
        await self.stop(slot)
        d = s.history.get(run.deployment.id)
        if d.state == "warm":
            s.history.transition(d.id, "retired", reason)
        elif d.state in ("starting", "shadow", "analysing"):
            s.history.transition(d.id, "failed", reason)

    async def reject(
        self, run: SlotRun, state: DeploymentState, reason: str, analysis: AnalysisResult | None = None
    ) -> None:
        await self.stop(run.slot)
        self.s.history.transition(run.deployment.id, state, reason, analysis=analysis)
        self.s.alerts.emit("deployment_" + state, f"deployment {run.deployment.id} {state}: {reason}")
