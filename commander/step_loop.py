"""One step of the commander: the next batch of bars to every running slot at once (the
active one trades, the others run in shadow), their results recorded, their faults handled,
and the hand-over that waited for this step finished."""

from __future__ import annotations

import asyncio

from commander.deployment import CheckResult
from commander.handover import Handover
from commander.protocol import Done, Fault, OrderReport, StepOp, Warmup, bar_row
from commander.runs import SlotRun
from commander.slot_runs import SlotRuns
from commander.slots import SlotDied
from commander.state import CommanderState
from sorte.runtime.values import Bar

HEALTHY_TICKS = 20  # steps without a restart after which the restart backoff starts over


class StepLoop:
    def __init__(self, state: CommanderState, runs: SlotRuns, handover: Handover) -> None:
        self.s, self.runs, self.handover = state, runs, handover

    async def step(self, bars: list[Bar]) -> None:
        s = self.s
        s.tick += 1
        warmup = self.joined(bars)
        feed_gap = self.check_feed(bars)
        s.recent.append((s.tick, bars))
        rows = [bar_row(b) for b in bars]
        runs = list(s.slots.values())
        stopping = s.pending is not None  # a hand-over: the active slot takes no new entries in this step
        # No entries on old prices (a catch-up, a backfill) nor on an account that differs from
        # the ledger, in every slot alike.
        fresh = s.feed.fresh(bars) and s.entries_allowed()
        reports = await self.runs.order_reports()
        replies = await asyncio.gather(
            *(
                self.send(
                    run,
                    bars,
                    rows,
                    fresh and not (stopping and run.role == "active"),
                    feed_gap,
                    warmup,
                    reports if run.role == "active" else None,
                )
                for run in runs
            )
        )
        for run, reply in zip(runs, replies, strict=True):
            if isinstance(reply, Done):
                self.runs.record(run, reply)
                await self.runs.place(run, reply)
            else:
                run.critical.append(CheckResult(name=reply.kind, kind="critical", outcome="fail", detail=reply.detail))
        for run, reply in zip(runs, replies, strict=True):
            if isinstance(reply, Fault):
                await self.handover.on_fault(run, reply.describe())
        if s.pending is not None and stopping:
            await self.handover.finish(s.pending)
        s.healthy_ticks += 1
        if s.healthy_ticks >= HEALTHY_TICKS:
            s.backoff = s.cs.restart_backoff_s

    async def send(
        self,
        run: SlotRun,
        bars: list[Bar],
        rows: list[list[object]],
        entries: bool,
        feed_gap: bool,
        warmup: Warmup | None = None,
        reports: list[OrderReport] | None = None,
    ) -> Done | Fault:
        op = StepOp(tick=self.s.tick, bars=rows, entries=entries, feed_gap=feed_gap, warmup=warmup, orders=reports)
        try:
            reply = await run.client.request(op, self.s.cs.step_timeout_s)
        except SlotDied as exc:
            reply = Fault(kind="crash", detail=str(exc))
        if not isinstance(reply, Done | Fault):
            reply = Fault(kind="protocol", detail=f"answered a step with {reply.ev!r}")
        self.s.observer.on_step_reply(run, bars, entries, reply)
        return reply

    def joined(self, bars: list[Bar]) -> Warmup | None:
        """The history of symbols whose first bar is in this step (added by pair selection)."""
        s = self.s
        first = {b.symbol: b.seq - 1 for b in bars if b.symbol in s.joining}
        if not first:
            return None
        s.joining -= set(first)
        for symbol in first:
            s.feed_last.pop(symbol, None)  # a symbol traded before starts a new sequence
        return s.feed.warmup(first, sorted(first))

    def check_feed(self, bars: list[Bar]) -> bool:
        """Report a gap in the feed itself (the slots are told, so it is no fault of theirs)."""
        s, gap = self.s, False
        for b in bars:
            last = s.feed_last.get(b.symbol)
            if last is not None and b.seq != last + 1:
                gap = True
                s.feed_gaps += 1
                s.alerts.emit("bar_gap", f"bar sequence gap on {b.symbol}: seq {b.seq} after {last}", tick=s.tick)
            s.feed_last[b.symbol] = b.seq
        return gap

    async def pause(self, seconds: float) -> None:
        """Wait between steps, waking at once when a slot dies or a stop is asked for."""
        if seconds <= 0:
            return
        waits = [asyncio.ensure_future(r.client.died.wait()) for r in self.s.slots.values()]
        waits.append(asyncio.ensure_future(self.s.stopping.wait()))
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
