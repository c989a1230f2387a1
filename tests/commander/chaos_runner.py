"""A commander in its own process for the chaos test (``tests/commander/test_chaos.py``).

    python -m tests.commander.chaos_runner DATA_DIR REPO TICKS --mode chaos --seed 7 --commits a,b,c

runs a commander on DATA_DIR until the shared ledger holds TICKS committed steps, so the test
can ``kill -9`` this process at any moment and start it again: the restarted commander goes
on from the history, the lease and the ledger.

``--mode chaos`` requests the A/A deployments (one after the other, ``--commits`` in order)
and kills, from inside the commander between two steps, the active slot and the candidate at
random (``--seed``, plus the number of earlier starts on this data dir: a restart draws anew).
What happened goes, one JSON object a line, to ``DATA_DIR/chaos-events.jsonl``: starts,
requests, kills, hand-overs, and every step the active slot committed with new entries
stopped (the step before a hand-over), keyed by the bar seq of that step.

``--mode reference`` runs the first deployment alone, with new entries stopped on the bar
seqs named in ``--pauses`` (a JSON list) and the active slot given its role again right after
each (as the slot taking over would load the book), so its ledger is what the chaos run's
must be when crashes and A/A hand-overs change nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import structlog

from commander.deployment import IN_FLIGHT_STATES
from commander.engine import Commander
from commander.observer import CommanderObserver
from commander.protocol import Done, Fault
from commander.requests import request_deployment
from commander.runs import Handoff, SlotRun
from sorte.config import Settings
from sorte.runtime.values import Bar
from tests.commander.commander_env import commander_settings

EVENTS_FILE = "chaos-events.jsonl"
# What happens to the A/A deployments, in an order the seed shuffles (each plan at least once).
PLANS = (
    "clean",
    "candidate_shadow",  # the candidate dies in its shadow window: rejected, the next one comes
    "candidate_before_handoff",  # ... on the step that stops the active slot's new entries
    "active_shadow",  # the active slot dies while a candidate shadows it: restarted
    "active_before_handoff",  # ... on the step that stops its new entries
    "active_watch",  # the promoted slot dies in its watch: rolled back to the warm one
    "active_after_watch",  # ... right after its watch passed: restarted
    "clean",
    "candidate_before_handoff",
    "active_before_handoff",
    "active_watch",
    "clean",
)


def plan(seed: int, i: int, count: int) -> str:
    """What happens to the i-th of ``count`` A/A deployments: the same on every start."""
    if i < 0:
        return "none"  # not requested by the chaos run (a cold rollback's)
    if i == count - 1:
        return "active_watch"  # an A/A deployment of the very commit that runs: no rollback possible
    plans = [PLANS[j % len(PLANS)] for j in range(count - 1)]
    random.Random(seed).shuffle(plans)
    return plans[i]


def chaos_settings(repo: Path, data_dir: Path) -> Settings:
    return commander_settings(
        repo,
        data_dir,
        shadow_bars=30,
        watch_bars=30,
        warm_bars=20,
        batch_interval_s=0.0,
        restart_backoff_s=0.2,
        max_restart_backoff_s=1.0,
        # Latency is not what the chaos test is about: two processes stepping side by side
        # on a small machine differ by more than the default floor.
        analysis={"min_bars": 30, "latency_floor_ms": 50.0},
    )


def read_events(data_dir: Path) -> list[dict[str, Any]]:
    path = Path(data_dir) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a kill -9
    return events


class Chaos(CommanderObserver):
    """Watches the commander through its observer hooks: requests the A/A deployments, kills
    slots on plan, notes what happened; in reference mode stops new entries on the named steps."""

    def __init__(self, commander: Commander, args: argparse.Namespace) -> None:
        self.c = commander
        self.args = args
        settings = commander.settings
        self.events_path = Path(settings.data_dir) / EVENTS_FILE
        self.pauses = set(json.loads(args.pauses)) if args.pauses else set()
        self.commits = [c for c in (args.commits or "").split(",") if c]
        self.last_watch: tuple[int, int, int] | None = None
        events = read_events(settings.data_dir)
        self.index_of = {e["deployment"]: e["index"] for e in events if e["kind"] == "request"}
        self.killed = {
            (e["kind"][5:], e.get("because") or e["deployment"], e["when"])
            for e in read_events(settings.data_dir)
            if e["kind"] in ("kill_active", "kill_candidate")
        }
        self.handoffs_logged = 0
        self.reassign = False
        self.emit("start", pid=os.getpid())

    def emit(self, kind: str, **data: Any) -> None:
        with self.events_path.open("a") as fh:
            fh.write(json.dumps({"kind": kind, "t": time.time(), "tick": self.c.tick, **data}) + "\n")

    def committed(self) -> int:
        return self.c.ledger.last_step() + 1

    # -- every step with new entries stopped (a hand-over's first half) -----------------
    def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
        if not entries and run.role == "active" and isinstance(reply, Done):
            self.emit("pause", cursor=reply.cursor, seqs=sorted({b.seq for b in bars}))

    async def before_between_steps(self) -> None:
        if self.args.mode == "reference":
            await self._reference_between()
        else:
            self._request_next()

    async def after_between_steps(self) -> None:
        if self.args.mode != "reference":
            self._log_handoffs()
            await self._inject()

    # -- reference -------------------------------------------------------------------------
    async def _reference_between(self) -> None:
        c = self.c
        active = c.active_run()
        if self.reassign and active is not None:
            # The slot that takes over loads the book from the ledger: so does this one.
            await c.handover.activate(active, c.lease.current().epoch)
            self.reassign = False
        cursor = c.ledger.cursor()
        nxt = max(cursor.values()) + 1 if cursor else 0
        if nxt in self.pauses and c.pending is None:
            ghost = SimpleNamespace(slot="none", deployment=SimpleNamespace(id=0), client=None)
            c.pending = Handoff(ghost, "promote", "reference pause")  # type: ignore[arg-type]
            self.reassign = True

    # -- chaos -----------------------------------------------------------------------------
    def _request_next(self) -> None:
        c = self.c
        if c.history.in_state(*IN_FLIGHT_STATES) or c.watch is not None or c.pending is not None:
            return
        if self.committed() >= self.args.ticks - 70:
            return  # no hand-over could finish before the end
        requested = [d for d in c.history.list(limit=10_000) if d.requested_by == "chaos"]
        if len(requested) >= len(self.commits):
            return
        i = len(requested)
        commit = self.commits[i]
        active = c.history.active()
        if i == len(self.commits) - 1 and active is not None:
            commit = active.commit  # the last one: an A/A deployment of the very commit that runs
        d = request_deployment(c.settings.data_dir, commit, "chaos", f"r{i}")
        self.index_of[d.id] = i
        self.emit("request", deployment=d.id, index=i, commit=commit)

    def _log_handoffs(self) -> None:
        for record in self.c.handoffs[self.handoffs_logged :]:
            data = record.model_dump()
            self.emit("handoff", handoff=data.pop("kind"), **data)
        self.handoffs_logged = len(self.c.handoffs)

    async def _inject(self) -> None:
        """Kill a slot at the point the plan of the deployment in flight names, once."""
        c = self.c
        active, cand, watch = c.active_run(), c.candidate(), c.watch
        watched, self.last_watch = self.last_watch, watch
        if c.pending is not None and c.pending.kind == "promote":
            i = self._index(c.pending.to.deployment.id)
            if self.plan(i) == "candidate_before_handoff":
                self._kill_once(c.pending.to, "candidate", "before the hand-over")
            elif self.plan(i) == "active_before_handoff" and active is not None:
                self._kill_once(active, "active", "before the hand-over", c.pending.to.deployment.id)
        elif cand is not None and c.pending is None:
            i, k = self._index(cand.deployment.id), c.tick - cand.since_tick
            if self.plan(i) == "candidate_shadow" and k >= self.plan_tick(i):
                self._kill_once(cand, "candidate", "in shadow")
            elif self.plan(i) == "active_shadow" and k >= self.plan_tick(i) and active is not None:
                self._kill_once(active, "active", "in shadow", cand.deployment.id)
        elif watch is not None and active is not None and active.deployment.id == watch[0]:
            i = self._index(active.deployment.id)
            if self.plan(i) == "active_watch" and c.tick - watch[1] >= self.plan_tick(i):
                self._kill_once(active, "active", "in the watch")
        elif (
            watch is None
            and watched is not None
            and active is not None
            and active.deployment.id == watched[0]
            and self.plan(self._index(active.deployment.id)) == "active_after_watch"
        ):
            self._kill_once(active, "active", "after the watch")

    def _index(self, deployment_id: int) -> int:
        return self.index_of.get(deployment_id, -1)  # -1: not requested here (a cold rollback's)

    def plan(self, i: int) -> str:
        return plan(self.args.seed, i, len(self.commits))

    def plan_tick(self, i: int) -> int:
        return random.Random(self.args.seed * 100 + i).randint(2, 26)

    def _kill_once(self, run: SlotRun, role: str, when: str, because: int | None = None) -> None:
        key = (role, because or run.deployment.id, when)
        if key in self.killed or run.client.dead:
            return
        self.killed.add(key)
        pid = run.client.process.proc.pid
        os.kill(pid, signal.SIGKILL)
        self.emit(f"kill_{role}", pid=pid, deployment=run.deployment.id, because=because, when=when)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.commander.chaos_runner")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("repo", type=Path)
    parser.add_argument("ticks", type=int)
    parser.add_argument("--mode", choices=["chaos", "reference"], default="chaos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commits", default="")
    parser.add_argument("--pauses", default="")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    commander = Commander(chaos_settings(args.repo, args.data_dir))
    chaos = commander.observer = Chaos(commander, args)

    def enough(c: Commander) -> bool:
        return chaos.committed() >= args.ticks

    report = asyncio.run(commander.run(until=enough))
    chaos.emit("stop", report=report.model_dump(mode="json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
