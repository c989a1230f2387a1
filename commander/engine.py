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

``Commander`` composes the parts: ``step_loop`` (one step), ``pipeline`` (request -> shadow
-> judgement -> watch), ``handover`` (hand-over, rollback, restart) and ``slot_runs`` (a
slot's start, feeding and end), all on one ``CommanderState``; what watches it from the
outside gives a ``commander.observer.CommanderObserver``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import structlog

from commander.alerts import Alerts
from commander.deployment import Deployment, DeploymentError
from commander.gateway import OrderGateway
from commander.handover import Handover
from commander.history import DeploymentHistory
from commander.inbox import Inbox
from commander.lease import Lease
from commander.order_journal import OrderJournal
from commander.pairs import PairRotation, pair_selector
from commander.pipeline import Pipeline
from commander.runs import CommanderReport
from commander.slot_runs import SlotRuns
from commander.source import ledger_path
from commander.state import CommanderState
from commander.status import HISTORY_FILE
from commander.step_loop import StepLoop
from commander.worktree import resolve_commit
from sorte import paths
from sorte.market import MarketAlert, write_health
from sorte.runtime.ledger import open_owned

log = structlog.get_logger("sorte.commander")


HEALTH_EVERY_S = 1.0


class Commander(CommanderState):
    _health_written = -HEALTH_EVERY_S
    _closed = False  # run has ended: the report keeps what the history said then
    _final_active: Deployment | None = None

    # The parts, each built on first use, all on this one state.
    @cached_property
    def slot_runs(self) -> SlotRuns:
        return SlotRuns(self)

    @cached_property
    def handover(self) -> Handover:
        return Handover(self, self.slot_runs)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(self, self.slot_runs, self.handover)

    @cached_property
    def step_loop(self) -> StepLoop:
        return StepLoop(self, self.slot_runs, self.handover)

    @cached_property
    def pairs(self) -> PairRotation | None:
        """The pair selection, on a live feed with market.pairs.enabled."""
        if not (self.feed.live and self.settings.market.pairs.enabled):
            return None
        return PairRotation(self, pair_selector(self.settings, self.feed))

    # -- life ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the step in flight, stop the slots, return from ``run``."""
        self.stopping.set()

    async def run(
        self, max_ticks: int | None = None, until: Callable[[Commander], bool] | None = None
    ) -> CommanderReport:
        self.lock.acquire()
        self.socket_dir = Path(tempfile.mkdtemp(prefix="sorte-cmd-"))
        self._open_stores()
        try:
            await self._recover()
            done = 0
            while not self.stopping.is_set():
                await self.observer.before_between_steps()
                await self.pipeline.between_steps()
                if self.pairs is not None:
                    await self.pairs.between_steps()
                if self.gateway is not None and self.gateway.halted:  # looked at again every retry_s
                    await self.gateway.ensure_reconciled(self.ledger)
                await self.observer.after_between_steps()
                if (until is not None and until(self)) or (max_ticks is not None and done >= max_ticks):
                    break
                batch = await self.feed.next_batch()
                if batch is None:
                    log.info("feed_exhausted", tick=self.tick)
                    break
                if batch:
                    t0 = time.monotonic()
                    await self.step_loop.step(batch)
                    self.observer.on_step(self.tick, time.monotonic() - t0)
                    done += 1
                self._write_feed_health()
                if not self.feed.live:  # a live feed is paced by the market itself
                    await self.step_loop.pause(self.cs.batch_interval_s)
            return self.report()
        finally:
            await self._shutdown()

    def _open_stores(self) -> None:
        self.history = DeploymentHistory(self.dir / HISTORY_FILE)
        self.lease = Lease(self.dir)
        self.inbox = Inbox(self.dir)
        self.alerts = Alerts(self.dir)

        # A finished replay starts over; a live feed never finishes.
        self.ledger = open_owned(ledger_path(self.dir), self.fingerprint, False, "feed", self.feed.finished)
        self.feed.route_alerts(self._market_alert)
        if self.settings.runtime.mode == "live":
            journal = OrderJournal(paths.account_dir(self.settings.data_dir))
            self.gateway = OrderGateway(
                self.settings, self.lease, self.alerts, journal, lambda: list(self.feed.symbols)
            )

    def _market_alert(self, alert: MarketAlert) -> None:
        """A symbol gone stale (no entries on it) or back: to the alert log, hence Telegram."""
        self.alerts.emit(f"feed_{alert.kind}", alert.message, tick=self.tick, symbol=alert.symbol)

    def _write_feed_health(self, force: bool = False) -> None:
        """The feed as the front-ends show it, at most once a second (a full disk is logged)."""
        now = time.monotonic()
        if not force and now - self._health_written < HEALTH_EVERY_S:
            return
        self._health_written = now
        try:
            write_health(paths.feed_health(self.dir), self.feed.health())
        except OSError as exc:
            log.warning("feed_health_not_written", reason=str(exc))

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):  # a collector that failed has nothing left to release
            await self.feed.close()
        if self.gateway is not None:
            with contextlib.suppress(Exception):
                await self.gateway.close()
        if "pairs" in self.__dict__ and self.pairs is not None:
            with contextlib.suppress(Exception):
                await self.pairs.close()
        if hasattr(self, "alerts"):
            self._write_feed_health(force=True)  # the last figures, as the feed stopped
        if self.starting is not None:
            self.starting.cancel()
            with contextlib.suppress(BaseException):
                (await self.starting).process.kill()
        for run in list(self.slots.values()):
            await run.client.stop()
        self.slots.clear()
        self._final_active = self.history.active() if hasattr(self, "history") else None
        self._closed = True
        for store in ("ledger", "history", "lease", "inbox"):
            if hasattr(self, store):
                getattr(self, store).close()
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
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
        self.feed.check_resume(cursor, self.ledger.last_step_ts())
        self.feed.seek(cursor)
        self.feed_last = dict(cursor)
        await self.feed.open()  # a live feed prefetches the lookback: the slots start warm
        if self.gateway is not None:  # bad keys fail here; the account is reconciled before any order
            await self.gateway.verify()
            self.gateway.hand_to(active.slot, epoch, self.ledger)
        run = await self.slot_runs.start(active, "active", epoch)
        await self.slot_runs.catch_up(run)
        for d in self.history.in_state("warm"):
            if d.slot != active.slot:
                with contextlib.suppress(DeploymentError):
                    await self.slot_runs.start(d, "shadow")
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
