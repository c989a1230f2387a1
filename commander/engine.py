"""The commander: the trading runtime as two slots, blue and green, driven bar by bar.

Every step the commander reads the next batch of bars and sends it to every running slot
(the active one trades, the others run in shadow), so both sides always see the same
sequence-numbered bars. Between steps it takes requests and carries deployments on:

- a requested commit starts in the idle slot from its own worktree, runs in shadow for
  ``shadow_bars`` steps, and is judged against the active slot on the same steps
  (``commander.analysis``): critical faults fail at once, performance checks with paired
  tests, too little data is inconclusive and never promotes;
- a pass hands over: one step with no new entries on the active slot, the lease moves to
  the candidate at epoch + 1, the candidate loads the book the old slot left in the shared
  ledger (checked identical), trades from the next step; the old slot stays warm in shadow;
- for ``watch_bars`` steps after a promotion the same checks run against the warm slot; a
  failure, or any critical fault of the new slot, rolls back (a lease hand-over only, since
  the previous slot is warm); rollback also comes from `sorte rollback` through the inbox;
- an active slot that crashes outside a watch is restarted with backoff and catches up on
  the steps it missed from the ledger's cursor; no bar is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from commander.alerts import Alerts
from commander.analysis import StepSample, judge
from commander.backend_choice import make_backend
from commander.backends import SlotBackend, SlotSpec
from commander.history import DeploymentHistory
from commander.inbox import CommanderLock, Inbox
from commander.lease import Lease
from commander.models import (
    CheckResult,
    CommitRejected,
    Deployment,
    DeploymentError,
)
from commander.protocol import bar_row, settings_payload
from commander.slots import SlotClient, SlotDied, launch, new_token, socket_path
from commander.source import ledger_path, open_source
from commander.status import HISTORY_FILE, commander_dir
from commander.worktree import ensure_worktree, resolve_commit
from sorte import paths
from sorte.config import Settings
from sorte.runtime.ledger import open_owned
from sorte.runtime.models import Bar

log = structlog.get_logger("sorte.commander")
SAMPLES_KEPT = 5000
WATCH_PASSED = "post-promotion watch passed"
WATCH_ENDED = "post-promotion watch ended early: no warm slot left to compare with"


def other(slot: str) -> str:
    return "green" if slot == "blue" else "blue"


@dataclass
class SlotRun:
    """A running slot as the commander sees it."""

    client: SlotClient
    deployment: Deployment
    role: str  # active | shadow
    samples: deque[StepSample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    critical: list[CheckResult] = field(default_factory=list)
    last_done: dict[str, Any] | None = None
    since_tick: int = 0

    @property
    def slot(self) -> str:
        return self.deployment.slot

    def window(self, start_tick: int) -> list[StepSample]:
        return [s for s in self.samples if s.tick > start_tick]


@dataclass
class Handoff:
    to: SlotRun
    kind: str  # promote | rollback
    reason: str
    inbox_id: int | None = None
    analysis: Any = None
    on_done: Callable[[float], None] | None = None  # records the rollback with the time the target trades


class HandoffRecord(BaseModel):
    kind: str
    tick: int
    from_deployment: int
    to_deployment: int
    epoch: int
    gap_ms: float | None  # old slot stopped new entries -> new slot allowed to trade
    book_matches: bool


class RollbackRecord(BaseModel):
    tick: int
    reason: str
    automatic: bool
    from_deployment: int
    to_deployment: int
    warm: bool
    fault_to_decision_ms: float | None = None
    duration_ms: float  # decision -> the target slot allowed to trade (its lease and book loaded)


class CommanderReport(BaseModel):
    ticks: int
    handoffs: list[HandoffRecord]
    rollbacks: list[RollbackRecord]
    restarts: int
    feed_gaps: int
    active: Deployment | None


class Commander:
    def __init__(self, settings: Settings, repo_root: Path | None = None, backend: SlotBackend | None = None) -> None:
        self.settings = settings
        self.cs = settings.commander
        self.dir = commander_dir(settings.data_dir).resolve()
        self.repo_root = Path(repo_root).resolve() if repo_root else paths.repo_root(settings)
        self.backend = backend or make_backend(self.cs.backend, self.dir, _slot_mounts(settings))
        self.lock = CommanderLock(self.dir)
        self.feed, self.fingerprint = open_source(settings)
        self.slots: dict[str, SlotRun] = {}
        self.tick = 0
        self.recent: deque[tuple[int, list[Bar]]] = deque(maxlen=SAMPLES_KEPT)
        self.feed_last: dict[str, int] = {}
        self.handoffs: list[HandoffRecord] = []
        self.rollbacks: list[RollbackRecord] = []
        self.restarts = 0
        self.feed_gaps = 0
        self.pending: Handoff | None = None
        self.watch: tuple[int, int, int] | None = None  # (deployment id, from tick, until tick)
        self.warm_until: dict[str, int] = {}
        self._starting: asyncio.Task[SlotClient] | None = None
        self._starting_id: int | None = None
        self._backoff = self.cs.restart_backoff_s
        self._healthy_ticks = 0
        self._stop = asyncio.Event()
        self._socket_dir: Path | None = None
        self._handling: set[int] = set()  # inbox requests whose hand-over is pending
        self._closed = False
        self._final_active: Deployment | None = None

    # -- life ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the step in flight, stop the slots, return from ``run``."""
        self._stop.set()

    async def run(
        self, max_ticks: int | None = None, until: Callable[[Commander], bool] | None = None
    ) -> CommanderReport:
        self.lock.acquire()
        self._socket_dir = Path(tempfile.mkdtemp(prefix="sorte-cmd-"))
        self._open_stores()
        try:
            await self._recover()
            done = 0
            while not self._stop.is_set():
                await self._between_steps()
                if (until is not None and until(self)) or (max_ticks is not None and done >= max_ticks):
                    break
                batch = await self.feed.next_batch()
                if batch is None:
                    log.info("feed_exhausted", tick=self.tick)
                    break
                if batch:
                    await self._step(batch)
                    done += 1
                await self._pause(self.cs.batch_interval_s)
            return self.report()
        finally:
            await self._shutdown()

    def _open_stores(self) -> None:
        self.history = DeploymentHistory(self.dir / HISTORY_FILE)
        self.lease = Lease(self.dir)
        self.inbox = Inbox(self.dir)
        self.alerts = Alerts(self.dir)

        def finished(cursor: dict[str, int]) -> bool:  # a finished replay starts over
            return bool(cursor) and all(cursor.get(s, -1) >= len(self.feed.series[s]) - 1 for s in self.feed.symbols)

        self.ledger = open_owned(ledger_path(self.dir), self.fingerprint, False, "feed", finished)

    async def _shutdown(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                (await self._starting).process.kill()
        for run in list(self.slots.values()):
            await run.client.stop()
        self.slots.clear()
        self._final_active = self.history.active() if hasattr(self, "history") else None
        self._closed = True
        for store in ("ledger", "history", "lease", "inbox"):
            if hasattr(self, store):
                getattr(self, store).close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self.lock.release()

    def report(self) -> CommanderReport:
        return CommanderReport(
            ticks=self.tick,
            handoffs=self.handoffs,
            rollbacks=self.rollbacks,
            restarts=self.restarts,
            feed_gaps=self.feed_gaps,
            active=self._final_active if self._closed or not hasattr(self, "history") else self.history.active(),
        )

    async def _pause(self, seconds: float) -> None:
        """Wait between steps, waking at once when a slot dies or a stop is asked for."""
        if seconds <= 0:
            return
        waits = [asyncio.ensure_future(r.client.died.wait()) for r in self.slots.values()]
        waits.append(asyncio.ensure_future(self._stop.wait()))
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    # -- recovery --------------------------------------------------------------------------
    async def _recover(self) -> None:
        """Bring back what the history says runs: after a clean stop or a kill -9 alike."""
        self.backend.cleanup()
        for d in self.history.in_state("promoting"):
            state = self.lease.current()
            if state.holder == d.slot and (d.epoch is None or state.epoch >= (d.epoch or 0)):
                self.history.transition(d.id, "active", "hand-over finished after a restart", epoch=state.epoch)
            else:
                self.history.transition(d.id, "failed", "the commander stopped before the hand-over; deploy again")
        for d in self.history.in_state("analysing"):
            self.history.transition(d.id, "shadow", "the commander restarted: the shadow window starts over")
        active = self.history.active()
        if active is None:
            active = await self._bootstrap()
            epoch = self.lease.current().epoch
        else:
            # A new epoch even for the same holder: a slot of the previous commander that is
            # still finishing a step can then neither commit it nor place an order.
            epoch = self._lease_for(active.slot, takeover=True)
        # Read after the takeover: a slot of a killed commander can no longer commit a step.
        cursor = self.ledger.cursor()
        self.feed.seek(cursor)
        self.feed_last = dict(cursor)
        run = await self._start_slot(active, "active", epoch)
        await self._catch_up(run)
        for d in self.history.in_state("warm"):
            if d.slot != active.slot:
                with contextlib.suppress(DeploymentError):
                    await self._start_slot(d, "shadow")
                    self.warm_until[d.slot] = self.tick + self.cs.warm_bars
        log.info("commander_ready", active=active.id, slot=active.slot, epoch=epoch, cursor=cursor)

    async def _bootstrap(self) -> Deployment:
        """Nothing active yet: the repository's checked-out commit becomes the first deployment."""
        commit = resolve_commit(self.repo_root, "HEAD")
        slot = self.lease.current().holder or "blue"
        d = self.history.create(commit, slot, "commander")
        self.history.transition(d.id, "starting", "first deployment")
        self.history.transition(d.id, "promoting", "first deployment: nothing to compare it with")
        epoch = self._lease_for(slot)
        return self.history.transition(d.id, "active", "first deployment", epoch=epoch)

    def _lease_for(self, slot: str, takeover: bool = False) -> int:
        """Make ``slot`` the lease holder (no slot of this commander runs yet)."""
        state = self.lease.current()
        if state.holder == slot:
            return self.lease.acquire(slot, state.epoch).epoch if takeover else state.epoch
        if state.holder is None:
            return self.lease.acquire(slot, None).epoch
        return self.lease.transfer(state.holder, slot, state.epoch).epoch

    # -- slots -----------------------------------------------------------------------------
    async def _launch(self, d: Deployment) -> SlotClient:
        assert self._socket_dir is not None
        worktree = await asyncio.to_thread(ensure_worktree, self.repo_root, d.commit, self.dir / "worktrees")
        spec = SlotSpec(
            slot=d.slot,
            deployment_id=d.id,
            commit=d.commit,
            worktree=worktree,
            socket=socket_path(self._socket_dir, d.slot),
            commander_dir=self.dir,
            token=new_token(),
            heartbeat_s=self.cs.heartbeat_s,
            log_file=self.dir / "logs" / f"{d.slot}-{d.id}.log",
        )
        return await launch(self.backend, spec, self.cs.start_timeout_s, self.cs.heartbeat_timeout_s)

    async def _assign(self, client: SlotClient, d: Deployment, role: str, epoch: int = 0) -> SlotRun:
        """Give a started slot its role; it loads the book from the ledger."""
        msg = {"op": "role", "role": role, "epoch": epoch, "settings": settings_payload(self.settings)}
        ready = await client.request(msg, self.cs.start_timeout_s)
        if ready.get("ev") != "ready":
            await client.kill()
            raise SlotDied(f"{ready.get('kind', 'fault')}: {ready.get('detail', ready)}")
        run = SlotRun(client, d, role, since_tick=self.tick)
        run.last_done = ready
        self.slots[d.slot] = run
        return run

    async def _start_slot(self, d: Deployment, role: str, epoch: int = 0) -> SlotRun:
        client = await self._launch(d)
        return await self._assign(client, d, role, epoch)

    async def _stop_slot(self, slot: str) -> None:
        run = self.slots.pop(slot, None)
        if run is not None:
            await run.client.stop()

    async def _catch_up(self, run: SlotRun) -> None:
        """Send a (re)started active slot the steps its ledger cursor has not seen yet."""
        cursor = (run.last_done or {}).get("cursor") or {}
        missed = [(t, bars) for t, bars in self.recent if any(b.seq > cursor.get(b.symbol, -1) for b in bars)]
        for tick, bars in missed:
            reply = await run.client.request(
                {"op": "step", "tick": tick, "bars": [bar_row(b) for b in bars], "entries": True},
                self.cs.step_timeout_s,
            )
            if reply.get("ev") != "done":
                raise SlotDied(f"{reply.get('kind')}: {reply.get('detail')}")
            self._record(run, reply, replace=True)

    # -- one step --------------------------------------------------------------------------
    async def _step(self, bars: list[Bar]) -> None:
        self.tick += 1
        feed_gap = self._check_feed(bars)
        self.recent.append((self.tick, bars))
        rows = [bar_row(b) for b in bars]
        runs = list(self.slots.values())
        stopping = self.pending is not None
        replies = await asyncio.gather(
            *(self._send(run, rows, not (stopping and run.role == "active"), feed_gap) for run in runs)
        )
        for run, reply in zip(runs, replies, strict=True):
            if reply.get("ev") == "done":
                self._record(run, reply)
            else:
                check = CheckResult(name=reply["kind"], kind="critical", outcome="fail", detail=reply["detail"])
                run.critical.append(check)
        faulty = [run for run, reply in zip(runs, replies, strict=True) if reply.get("ev") != "done"]
        for run in faulty:
            await self._on_fault(run, faulty_reply(replies[runs.index(run)]))
        if self.pending is not None and stopping:
            await self._finish_handoff(self.pending)
        self._healthy_ticks += 1
        if self._healthy_ticks >= 20:
            self._backoff = self.cs.restart_backoff_s

    async def _send(self, run: SlotRun, rows: list[list[Any]], entries: bool, feed_gap: bool) -> dict[str, Any]:
        msg = {"op": "step", "tick": self.tick, "bars": rows, "entries": entries, "feed_gap": feed_gap}
        try:
            return await run.client.request(msg, self.cs.step_timeout_s)
        except SlotDied as exc:
            return {"ev": "fault", "kind": "crash", "detail": str(exc)}

    def _record(self, run: SlotRun, reply: dict[str, Any], replace: bool = False) -> None:
        tick = int(reply["tick"])
        if replace:
            while run.samples and run.samples[-1].tick >= tick:
                run.samples.pop()
        sample = StepSample(
            tick=tick,
            latency_ms=reply["latency_ms"],
            errors=reply["errors"],
            equity=reply["equity"],
            pnl=reply["pnl"],
        )
        run.samples.append(sample)
        run.last_done = reply

    def _check_feed(self, bars: list[Bar]) -> bool:
        """Report a gap in the feed itself (the slots are told, so it is no fault of theirs)."""
        gap = False
        for b in bars:
            last = self.feed_last.get(b.symbol)
            if last is not None and b.seq != last + 1:
                gap = True
                self.feed_gaps += 1
                self.alerts.emit("bar_gap", f"bar sequence gap on {b.symbol}: seq {b.seq} after {last}", tick=self.tick)
            self.feed_last[b.symbol] = b.seq
        return gap

    # -- faults ----------------------------------------------------------------------------
    async def _on_fault(self, run: SlotRun, reason: str) -> None:
        d = self.history.get(run.deployment.id)
        if run.role == "active":
            if self.watch is not None and self.watch[0] == d.id and self._warm_run() is not None:
                await self._auto_rollback(f"critical fault after promotion: {reason}", fault=run)
            else:
                await self._restart_active(run, reason)
        elif d.state in ("starting", "shadow", "analysing"):
            await self._reject(run, "rejected", f"critical fault in shadow: {reason}")
        else:  # a warm slot lost: the next rollback is a cold one
            await self._stop_slot(run.slot)
            if d.state == "warm":
                self.history.transition(d.id, "retired", f"warm slot lost: {reason}")
            self.alerts.emit("warm_slot_lost", f"deployment {d.id} ({d.slot}) stopped: {reason}")

    async def _restart_active(self, run: SlotRun, reason: str) -> None:
        """The supervisor: kill what is left, wait (backoff), start again at the same epoch
        (the lease holder did not change), catch up the missed steps from the ledger."""
        self.alerts.emit("runtime_crash", f"active slot {run.slot} (deployment {run.deployment.id}): {reason}")
        await run.client.kill()
        self.slots.pop(run.slot, None)
        while not self._stop.is_set():
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self.cs.max_restart_backoff_s)
            self._healthy_ticks = 0
            self.restarts += 1
            try:
                new = await self._start_slot(run.deployment, "active", self.lease.current().epoch)
                new.samples, new.since_tick = run.samples, run.since_tick  # a candidate's window goes on
                await self._catch_up(new)
                log.info("active_restarted", slot=run.slot, deployment=run.deployment.id, restarts=self.restarts)
                return
            except SlotDied as exc:
                self.slots.pop(run.slot, None)
                self.alerts.emit("runtime_crash", f"restarting deployment {run.deployment.id} failed: {exc}")

    async def _reject(self, run: SlotRun, state: str, reason: str, analysis: Any = None) -> None:
        await self._stop_slot(run.slot)
        self.history.transition(run.deployment.id, state, reason, analysis=analysis)
        self.alerts.emit("deployment_" + state, f"deployment {run.deployment.id} {state}: {reason}")

    # -- between steps ---------------------------------------------------------------------
    async def _between_steps(self) -> None:
        for run in list(self.slots.values()):
            if not run.client.check_heartbeat() and run.slot in self.slots:
                await self._on_fault(run, f"crash: {run.client.dead}")
        await self._take_requests()
        await self._advance_candidate()
        await self._advance_watch()
        for slot, until in list(self.warm_until.items()):
            if self.tick >= until and self.watch is None and slot in self.slots:
                await self._retire(slot, "kept warm long enough")

    async def _take_requests(self) -> None:
        if self.pending is not None:  # one hand-over at a time: the next request waits a step
            return
        for req in self.inbox.pending():
            if self.pending is not None:
                return
            if req.id in self._handling:
                continue
            self._handling.add(req.id)
            try:
                message = await self._rollback(req.args.get("to"), req.args.get("reason") or "requested", False, req.id)
            except DeploymentError as exc:
                self.inbox.finish(req.id, False, str(exc))
                self._handling.discard(req.id)
                continue
            if message:  # finished (or nothing to do); else it finishes with the hand-over
                self.inbox.finish(req.id, True, message)
                self._handling.discard(req.id)

    async def _advance_candidate(self) -> None:
        if self._starting is not None and not self.feed.live:
            # A replay waits for the candidate: the same bars then give the same judgement.
            await asyncio.wait({self._starting}, timeout=self.cs.start_timeout_s + 5)
        cand = self._candidate()
        if cand is None and self._starting is None:
            await self._start_next()
        elif self._starting is not None and self._starting.done():
            await self._shadow_started()
        elif cand is not None and self.pending is None:
            active = self._active_run()
            if active is not None and len(cand.window(cand.since_tick)) >= self.cs.shadow_bars:
                await self._judge_candidate(cand, active)

    async def _start_next(self) -> None:
        waiting = self.history.in_state("requested", "starting", "shadow")
        active = self.history.active()
        if not waiting or active is None or self.watch is not None or self.pending is not None:
            return
        d = waiting[0]
        if self.history.is_rejected(d.commit):
            self.history.transition(d.id, "rejected", f"commit {d.commit[:12]} was rejected or rolled back before")
            return
        idle = other(active.slot)
        if d.slot != idle:
            d = self.history.reassign_slot(d.id, idle)
        if idle in self.slots:
            await self._retire(idle, f"slot needed by deployment {d.id}")
        if d.state == "requested":
            d = self.history.transition(d.id, "starting", "starting in the idle slot")
        self._starting, self._starting_id = asyncio.create_task(self._launch(d)), d.id

    async def _shadow_started(self) -> None:
        task, d = self._starting, self.history.get(self._starting_id or 0)
        self._starting = self._starting_id = None
        assert task is not None
        try:
            await self._assign(task.result(), d, "shadow")
        except (SlotDied, DeploymentError, OSError) as exc:
            self.history.transition(d.id, "failed", f"could not start: {exc}")
            self.alerts.emit("deployment_failed", f"deployment {d.id} could not start: {exc}")
            return
        if d.state == "starting":
            self.history.transition(d.id, "shadow", "running in shadow next to the active slot")
        log.info("shadow_started", deployment=d.id, slot=d.slot, tick=self.tick)

    async def _judge_candidate(self, cand: SlotRun, active: SlotRun) -> None:
        self.history.transition(cand.deployment.id, "analysing", "shadow window complete")
        start = cand.since_tick
        result = judge(
            cand.critical,
            active.window(start),
            cand.window(start),
            self.cs.analysis,
            started_at=datetime.now(UTC),
        )
        if result.verdict == "pass":
            self.pending = Handoff(cand, "promote", "analysis passed", analysis=result)
        else:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if c.outcome != "pass")
            state = "rejected" if result.verdict == "fail" else "inconclusive"
            await self._reject(cand, state, f"analysis {result.verdict}: {failed}", analysis=result)

    async def _advance_watch(self) -> None:
        if self.watch is None:
            return
        deployment_id, start, until = self.watch
        active, warm = self._active_run(), self._warm_run()
        if active is None or active.deployment.id != deployment_id:
            self.watch = None  # rolled back, or restarting: nothing is left to watch
            return
        if warm is None:
            self.watch = None
            self.history.note(deployment_id, WATCH_ENDED)
            return
        if self.tick < until:
            return
        result = judge([], warm.window(start), active.window(start), self.cs.analysis, datetime.now(UTC))
        self.watch = None
        if result.verdict == "fail":
            failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if c.outcome == "fail")
            await self._auto_rollback(f"post-promotion analysis failed: {failed}")
        else:
            log.info("watch_passed", deployment=deployment_id, verdict=result.verdict, tick=self.tick)
            self.history.note(deployment_id, WATCH_PASSED)
            self.warm_until[warm.slot] = self.tick + self.cs.warm_bars

    async def _retire(self, slot: str, reason: str) -> None:
        run = self.slots.get(slot)
        self.warm_until.pop(slot, None)
        if run is None or run.role == "active":
            return
        await self._stop_slot(slot)
        d = self.history.get(run.deployment.id)
        if d.state == "warm":
            self.history.transition(d.id, "retired", reason)
        elif d.state in ("starting", "shadow", "analysing"):
            self.history.transition(d.id, "failed", reason)

    # -- hand-over and rollback ------------------------------------------------------------
    async def _finish_handoff(self, h: Handoff, fault: SlotRun | None = None) -> None:
        """The active slot has committed its last step (or is dead): move the lease and the book."""
        self.pending = None
        if h.to.slot not in self.slots or h.to.client.dead:
            log.warning("handoff_cancelled", to=h.to.deployment.id, reason="the target slot is gone")
            if h.inbox_id is not None:
                self.inbox.finish(h.inbox_id, False, "the target slot stopped before the hand-over")
                self._handling.discard(h.inbox_id)
            return
        old = self._active_run() if fault is None else fault
        state = self.lease.current()
        from_slot = state.holder or (old.slot if old else other(h.to.slot))
        t_stop = (old.last_done or {}).get("t_recv") if old is not None and fault is None else None
        if h.kind == "promote":
            self.history.transition(h.to.deployment.id, "promoting", h.reason, analysis=h.analysis)
        epoch = self.lease.transfer(from_slot, h.to.slot, state.epoch).epoch
        old_id = self.history.active().id if self.history.active() else 0
        if h.kind == "promote":
            self.history.transition(h.to.deployment.id, "active", h.reason, epoch=epoch)
        else:
            self.history.rollback(old_id, h.to.deployment.id, h.reason, epoch)
        if fault is not None or (old is not None and old.client.dead):
            await (fault or old).client.kill()
            self.slots.pop((fault or old).slot, None)
            old = None
        old_book = old.last_done.get("book") if old is not None and old.last_done else None
        h.to.role = "active"  # from here a fault of the new slot is a fault of the active one
        self.warm_until.pop(h.to.slot, None)
        retire_old = None if old is None else (self._demote(old) if h.kind == "promote" else self._stop_slot(old.slot))
        # The new slot takes over while the old one turns to shadow (or stops): two processes.
        ready, _ = await asyncio.gather(
            self._activate(h.to, epoch), retire_old or asyncio.sleep(0), return_exceptions=True
        )
        if h.kind == "promote":
            self.watch = (h.to.deployment.id, self.tick, self.tick + self.cs.watch_bars)
        if isinstance(ready, BaseException):
            if not isinstance(ready, SlotDied):
                raise ready
            await self._on_fault(h.to, f"crash while taking over: {ready}")
            return
        matches = old_book is None or old_book == ready["book"]
        gap_ms = (ready["t"] - t_stop) * 1000 if t_stop is not None else None
        self.handoffs.append(
            HandoffRecord(
                kind=h.kind,
                tick=self.tick,
                from_deployment=old_id,
                to_deployment=h.to.deployment.id,
                epoch=epoch,
                gap_ms=gap_ms,
                book_matches=matches,
            )
        )
        if h.kind == "promote":
            self.alerts.emit("deployment_promoted", f"deployment {h.to.deployment.id} is active at epoch {epoch}")
        if h.on_done is not None:
            h.on_done(ready["t"])
        if h.inbox_id is not None:
            self.inbox.finish(h.inbox_id, True, f"rolled back to deployment {h.to.deployment.id} at epoch {epoch}")
            self._handling.discard(h.inbox_id)
        if not matches:
            h.to.critical.append(
                CheckResult(name="ledger", kind="critical", outcome="fail", detail="book differs after the hand-over")
            )
            if h.kind == "promote":
                await self._auto_rollback("the book differs after the hand-over")
        log.info("handoff", kind=h.kind, to=h.to.deployment.id, epoch=epoch, gap_ms=gap_ms, tick=self.tick)

    async def _activate(self, run: SlotRun, epoch: int) -> dict[str, Any]:
        msg = {"op": "role", "role": "active", "epoch": epoch, "settings": settings_payload(self.settings)}
        ready = await run.client.request(msg, self.cs.step_timeout_s)
        if ready.get("ev") != "ready":
            raise SlotDied(f"{ready.get('kind')}: {ready.get('detail')}")
        run.role, run.last_done = "active", ready
        run.deployment = self.history.get(run.deployment.id)
        await self._catch_up(run)
        return ready

    async def _demote(self, run: SlotRun) -> None:
        """The replaced slot keeps following the bars in shadow: a rollback is then a hand-over."""
        msg = {"op": "role", "role": "shadow", "epoch": 0, "settings": settings_payload(self.settings)}
        try:
            ready = await run.client.request(msg, self.cs.step_timeout_s)
        except SlotDied:
            ready = {}
        if ready.get("ev") != "ready":
            await self._stop_slot(run.slot)
            with contextlib.suppress(DeploymentError):
                self.history.transition(run.deployment.id, "retired", "could not stay warm in shadow")
            return
        run.role, run.since_tick, run.last_done = "shadow", self.tick, ready
        run.deployment = self.history.get(run.deployment.id)

    async def _rollback(
        self,
        to: int | None,
        reason: str,
        automatic: bool,
        inbox_id: int | None = None,
        fault: SlotRun | None = None,
    ) -> str:
        """Give the lease back. Returns a message when done at once (or nothing to do), ""
        when the hand-over happens at the end of the next step."""
        t0 = time.monotonic()
        current = self.history.active()
        if current is None:
            raise DeploymentError("nothing is active: nothing to roll back")
        if not automatic and (done := nothing_to_roll_back(self.history, to)):
            return done
        target = self._rollback_target(current, to)
        warm = self.slots.get(target.slot)
        is_warm = warm is not None and warm.deployment.id == target.id
        if not is_warm:
            warm = await self._cold_start(current, target)
        assert warm is not None
        h = Handoff(warm, "rollback", reason, inbox_id)
        active = self._active_run()
        h.on_done = lambda ready_t: self._note_rollback(current, warm, reason, automatic, is_warm, t0, fault, ready_t)
        self.alerts.emit("rollback", f"rolling back deployment {current.id} to {target.id}: {reason}")
        if fault is None and active is not None and not active.client.dead:
            self.pending = h  # a healthy active stops entries for one step first
            return ""
        await self._finish_handoff(h, fault=fault or active)
        return f"rolled back to deployment {warm.deployment.id}"

    async def _auto_rollback(self, reason: str, fault: SlotRun | None = None) -> None:
        """A rollback the commander decides; when none is possible the active slot carries on
        (or, after a fault, is restarted), and operators are told why."""
        try:
            await self._rollback(None, reason, automatic=True, fault=fault)
        except DeploymentError as exc:
            self.alerts.emit("rollback_impossible", f"automatic rollback not possible ({exc}): {reason}")
            if fault is not None:
                await self._restart_active(fault, reason)

    def _note_rollback(self, current, warm, reason, automatic, is_warm, t0, fault, ready_t) -> None:
        self.rollbacks.append(
            RollbackRecord(
                tick=self.tick,
                reason=reason,
                automatic=automatic,
                from_deployment=current.id,
                to_deployment=warm.deployment.id,
                warm=is_warm,
                fault_to_decision_ms=(t0 - fault.client.died_at) * 1000 if fault and fault.client.died_at else None,
                duration_ms=(ready_t - t0) * 1000,
            )
        )

    def _rollback_target(self, current: Deployment, to: int | None) -> Deployment:
        if to is not None:
            target = self.history.get(to)
            if target.state not in ("warm", "retired"):
                raise DeploymentError(f"deployment {to} is {target.state}; only a warm or retired one can come back")
        else:
            warm = self._warm_run()
            target = self.history.get(warm.deployment.id) if warm else self.history.previous()
            if target is None:
                raise DeploymentError("nothing to roll back to: no earlier deployment may run again")
        if self.history.is_rejected(target.commit) or target.commit == current.commit:
            raise CommitRejected(f"deployment {target.id} runs commit {target.commit[:12]}, which cannot come back")
        return target

    async def _cold_start(self, current: Deployment, target: Deployment) -> SlotRun:
        """Start the target in the idle slot (a new deployment of its commit if it ran in the
        active one) in shadow, ready for the hand-over."""
        idle = other(current.slot)
        if self._starting is not None:
            self._starting.cancel()
            self._starting = self._starting_id = None
        if idle in self.slots:
            await self._retire(idle, f"slot needed to roll back to deployment {target.id}")
        if target.slot != idle:  # it ran in the slot that is active now: a new deployment of its commit
            wanted = target.id
            target = self.history.create(target.commit, idle, f"rollback to {wanted}")
            self.history.transition(target.id, "starting", f"rollback to deployment {wanted}")
            self.history.transition(target.id, "promoting", f"rollback to deployment {wanted}")
        return await self._start_slot(target, "shadow")

    # -- lookups ---------------------------------------------------------------------------
    def _active_run(self) -> SlotRun | None:
        return next((r for r in self.slots.values() if r.role == "active"), None)

    def _warm_run(self) -> SlotRun | None:
        for run in self.slots.values():
            if run.role == "shadow" and self.history.get(run.deployment.id).state == "warm":
                return run
        return None

    def _candidate(self) -> SlotRun | None:
        for run in self.slots.values():
            if run.role == "shadow" and self.history.get(run.deployment.id).state in ("shadow", "analysing"):
                return run
        return None


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


def _slot_mounts(settings: Settings) -> dict[str, str]:
    mounts = {str(Path(p).resolve().parent): "ro" for p in settings.runtime.data}
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    mounts[str(data_dir)] = "ro"  # control.json; the commander's own folder is mounted rw
    return mounts


def faulty_reply(reply: dict[str, Any]) -> str:
    return f"{reply.get('kind')}: {reply.get('detail')}"
