"""The commander's hand-over gap, rollback times and A/A false-rollback rate, on local slots.

    .venv/bin/python bench/commander.py [--deploys 50] [--quick]

One commander (``commander.engine.Commander``, local slot processes, the bundled replay
market with 20,000 bars so the replay never ends, no pause between steps) runs on a
throw-away git repository holding this project's files. Its ``until`` callback drives a
schedule: every deployment is requested (``commander.requests.request_deployment``) when
the previous one has settled, so the commander starts once for the whole run.

* A/A: each deployment is a fresh commit with the same tree as the running one (same code,
  new sha: a rollback to a deployment of the same sha is refused by design, and a commit
  once rejected could never come back, so one false verdict would decide all the next
  ones). It runs ``shadow_bars`` = 30 steps in shadow, is judged with the default analysis
  settings (``min_bars`` 30), is promoted and watched for ``watch_bars`` = 30 steps. A
  false rollback is an A/A deployment that does not end active with the watch passed.
* hand-over gap: ``HandoffRecord.gap_ms`` of every promotion (the old slot's last step
  without new entries received -> the new slot ready to trade, both slot clocks).
* warm rollback: right after some A/A deployments pass their watch, ``sorte rollback``
  through the inbox (``to`` unset) while the previous deployment is warm.
* cold rollback: after other ones, once the previous deployment is retired
  (``warm_bars`` = 5), a rollback ``to`` it: its slot process is started again first.
* hard fault: extra deployments whose new active slot is killed (``kill -9``) 5 steps into
  the watch; the commander rolls back to the warm slot.

Rollback times: the engine's ``RollbackRecord`` fields, and this script's own clocks
through a ``commander.observer.CommanderObserver`` that notes the monotonic time when a
rollback is decided (``on_rollback_decided``) and when the target slot answered ready to
trade (``on_activated``, ``ready.t``: CLOCK_MONOTONIC, shared by the processes of the host).
Anchors in the same run: the slot process start (``on_slot_launched``: worktree, process,
hello) and the commander's step time (``on_step``).
Results go to ``bench/results/commander.json``.
Targets: gap p99 < 250 ms, A/A false rollbacks < 2 %, warm rollback < 1 s, cold < 10 s,
hard fault -> rollback decision < 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the test suite's copy-of-this-project helper

from latency_figures import stats  # noqa: E402
from project_repo import copy_project, git  # noqa: E402

from commander.deployment import FINAL_STATES, Deployment  # noqa: E402
from commander.engine import Commander  # noqa: E402
from commander.observer import CommanderObserver  # noqa: E402
from commander.protocol import Ready  # noqa: E402
from commander.requests import request_deployment  # noqa: E402
from commander.runs import SlotRun  # noqa: E402
from sorte.config import Settings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "commander.json"
TARGETS = {"gap_p99_ms": 250.0, "aa_false_rate": 0.02, "warm_rollback_ms": 1000.0, "cold_rollback_ms": 10000.0}
TARGETS["fault_to_decision_ms"] = 5000.0
WARM_UP = 20  # steps the first deployment trades alone
KILL_AFTER = 5  # steps into the watch


def settings_for(repo: Path, data: Path) -> Settings:
    return Settings(
        data_dir=data,
        strategies_dir=repo / "strategies",
        git={"repo_root": str(repo)},
        runtime={"demo_bars": 20000},
        commander={
            "shadow_bars": 30,
            "watch_bars": 30,
            "warm_bars": 5,
            "batch_interval_s": 0.0,
            "analysis": {"min_bars": 30},
        },
    )


def same_tree_commit(repo: Path, n: int) -> str:
    """A new commit on top of main with main's tree: the same code under a new sha."""
    sha = git(repo, "commit-tree", "main^{tree}", "-p", "main", "-m", f"A/A {n}")
    git(repo, "update-ref", f"refs/heads/aa-{n}", sha)
    return sha


class Clocks(CommanderObserver):
    """Clocks on the slot start, the step, the rollback decision and the moment a slot is
    ready to trade."""

    def __init__(self) -> None:
        self.launch_ms: list[float] = []
        self.step_ms: list[float] = []
        self.decided: list[float] = []  # monotonic, one per rollback decided
        self.ready: list[tuple[int, float]] = []  # (deployment id, ready.t) per activation

    def on_slot_launched(self, deployment: Deployment, seconds: float) -> None:
        self.launch_ms.append(seconds * 1000)

    def on_step(self, tick: int, seconds: float) -> None:
        self.step_ms.append(seconds * 1000)

    def on_rollback_decided(self, to: int | None, reason: str, automatic: bool) -> None:
        self.decided.append(time.monotonic())

    def on_activated(self, run: SlotRun, ready: Ready) -> None:
        self.ready.append((run.deployment.id, ready.t))


def schedule(deploys: int, warm: int, cold: int, faults: int) -> list[dict[str, Any]]:
    """A/A deployments with warm and cold rollbacks after some, and fault deployments in between."""
    plan = [{"kind": "aa", "then": None} for _ in range(deploys)]

    def spread(k: int, offset: float) -> list[int]:
        return [min(deploys - 1, int((i + offset) * deploys / k)) for i in range(k)] if k else []

    used: set[int] = set()
    for then, k, offset in (("warm", warm, 0.3), ("cold", cold, 0.7)):
        for i in spread(k, offset):
            while i in used:
                i = (i + 1) % deploys
            used.add(i)
            plan[i]["then"] = then
    for j, i in enumerate(sorted(spread(faults, 0.5), reverse=True)):
        plan.insert(i + 1, {"kind": "fault", "then": None, "n": j})
    return plan


class Driver:
    """The ``until`` callback: requests the next deployment when the previous one settled,
    submits the rollbacks and kills the slot on schedule, and notes what happened."""

    def __init__(self, settings: Settings, repo: Path, plan: list[dict[str, Any]], deadline_s: float) -> None:
        self.settings, self.repo, self.plan = settings, repo, plan
        self.clocks = Clocks()
        self.deadline = time.monotonic() + deadline_s
        self.i = -1
        self.phase = "warmup"
        self.did = 0
        self.deploys: list[dict[str, Any]] = []
        self.rollbacks: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.cur: dict[str, Any] = {}
        self.timed_out = False

    def __call__(self, c: Commander) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        step = getattr(self, "_" + self.phase)
        return bool(step(c))

    # phases ----------------------------------------------------------------------------
    def _warmup(self, c: Commander) -> bool:
        return self._next(c) if c.tick >= WARM_UP else False

    def _next(self, c: Commander) -> bool:
        self.i += 1
        if self.i >= len(self.plan):
            return c.pending is None
        item = self.plan[self.i]
        sha = same_tree_commit(self.repo, self.i)
        d = request_deployment(self.settings.data_dir, sha, "bench", f"bench-{self.i}")
        self.did = d.id
        self.cur = {"n": self.i, "kind": item["kind"], "then": item["then"], "deployment": d.id, "tick": c.tick}
        self.cur["t_request"] = time.monotonic()
        self.handoffs_before = len(c.handoffs)
        self.phase = "deploying"
        return False

    def _deploying(self, c: Commander) -> bool:
        d = c.history.get(self.did)
        if (
            self.cur["kind"] == "fault"
            and d.state == "active"
            and c.watch is not None
            and c.watch[0] == self.did
            and c.tick >= c.watch[1] + KILL_AFTER
        ):
            return self._kill(c)
        if not self._settled(c, d):
            return False
        passed = d.state == "active" and any(e.outcome == "watch_passed" for e in c.history.events(d.id))
        promote = [h for h in c.handoffs[self.handoffs_before :] if h.kind == "promote" and h.to_deployment == d.id]
        self.cur.update(
            state=d.state,
            watch_passed=passed,
            reason=d.reason if not passed else "",
            gap_ms=promote[0].gap_ms if promote else None,
            book_matches=promote[0].book_matches if promote else None,
            s=round(time.monotonic() - self.cur.pop("t_request"), 2),
            ticks=c.tick - self.cur["tick"],
        )
        self.deploys.append(self.cur)
        warm = c.warm_run()
        if passed and self.cur["then"] == "warm" and warm is not None:
            return self._submit(c, None, "warm", warm.deployment.id)
        if passed and self.cur["then"] == "cold" and warm is not None:
            self.prev = warm.deployment.id
            self.phase = "cold_prep"
            return False
        if self.cur["kind"] == "fault":
            self.faults.append({"n": self.cur["n"], "skipped": f"not promoted: {d.state} {d.reason}"})
        return self._next(c)

    def _cold_prep(self, c: Commander) -> bool:
        if c.history.get(self.prev).state != "retired":
            return False
        return self._submit(c, self.prev, "cold", self.prev)

    def _submit(self, c: Commander, to: int | None, kind: str, target: int) -> bool:
        self.rb = {"kind": kind, "from": self.did, "to": target, "tick": c.tick}
        self.rb_counts = (len(c.rollbacks), len(self.clocks.decided), len(self.clocks.ready), len(c.handoffs))
        self.rb["t_submit"] = time.monotonic()
        self.rb["request"] = c.inbox.submit("rollback", to=to, reason=f"bench {kind} rollback")
        self.phase = "rolling_back"
        return False

    def _rolling_back(self, c: Commander) -> bool:
        req = c.inbox.get(self.rb["request"])
        if req.status == "pending" or c.pending is not None:
            return False
        n_rb, n_dec, n_ready, n_h = self.rb_counts
        rb = self.rb
        rb.update(status=req.status, result=req.result)
        if req.status == "done" and len(c.rollbacks) > n_rb:
            record = c.rollbacks[n_rb]
            ready = [t for did, t in self.clocks.ready[n_ready:] if did == record.to_deployment]
            handoff = [h for h in c.handoffs[n_h:] if h.kind == "rollback"]
            rb.update(
                warm=record.warm,
                engine_duration_ms=round(record.duration_ms, 2),
                gap_ms=handoff[0].gap_ms if handoff else None,
                book_matches=handoff[0].book_matches if handoff else None,
                submit_to_decision_ms=round((self.clocks.decided[n_dec] - rb["t_submit"]) * 1000, 2),
                decision_to_trading_ms=round((ready[0] - self.clocks.decided[n_dec]) * 1000, 2) if ready else None,
                submit_to_trading_ms=round((ready[0] - rb["t_submit"]) * 1000, 2) if ready else None,
            )
        del rb["t_submit"]
        self.rollbacks.append(rb)
        return self._next(c)

    def _kill(self, c: Commander) -> bool:
        run = c.active_run()
        assert run is not None and run.deployment.id == self.did
        self.f_counts = (len(c.rollbacks), len(self.clocks.decided), len(self.clocks.ready))
        self.f = {"n": self.cur["n"], "deployment": self.did, "slot": run.slot, "tick": c.tick}
        self.f["epoch_before"] = c.lease.current().epoch
        self.t_kill = time.monotonic()
        os.kill(run.client.process.proc.pid, signal.SIGKILL)
        self.phase = "fault_wait"
        return False

    def _fault_wait(self, c: Commander) -> bool:
        n_rb, n_dec, n_ready = self.f_counts
        if len(c.rollbacks) <= n_rb:
            return False
        seen = time.monotonic()
        record, lease = c.rollbacks[n_rb], c.lease.current()
        ready = [t for did, t in self.clocks.ready[n_ready:] if did == record.to_deployment]
        self.f.update(
            automatic=record.automatic,
            warm=record.warm,
            reason=record.reason[:160],
            engine_fault_to_decision_ms=record.fault_to_decision_ms,
            engine_duration_ms=round(record.duration_ms, 2),
            kill_to_decision_ms=round((self.clocks.decided[n_dec] - self.t_kill) * 1000, 2),
            kill_to_trading_ms=round((ready[0] - self.t_kill) * 1000, 2) if ready else None,
            kill_to_record_seen_ms=round((seen - self.t_kill) * 1000, 2),
            lease_moved=lease.holder != self.f["slot"] and lease.epoch > self.f["epoch_before"],
            state=c.history.get(self.did).state,
        )
        self.faults.append(self.f)
        self.cur["s"] = round(time.monotonic() - self.cur.pop("t_request"), 2)
        self.deploys.append({**self.cur, "state": self.f["state"], "watch_passed": False, "killed": True})
        return self._next(c)

    @staticmethod
    def _settled(c: Commander, d) -> bool:
        if d.state in FINAL_STATES:
            return c.pending is None
        if d.state == "active":
            return c.watch is None and c.pending is None
        return d.state in ("warm", "retired")


def summarise(driver: Driver, c: Commander, wall_s: float) -> dict[str, Any]:
    aa = [d for d in driver.deploys if d["kind"] == "aa"]
    false = [d for d in aa if not d["watch_passed"]]
    gaps = [d["gap_ms"] for d in driver.deploys if d.get("gap_ms") is not None]
    warm = [r for r in driver.rollbacks if r["kind"] == "warm" and r.get("decision_to_trading_ms") is not None]
    cold = [r for r in driver.rollbacks if r["kind"] == "cold" and r.get("decision_to_trading_ms") is not None]
    faults = [f for f in driver.faults if "kill_to_decision_ms" in f]
    launch = statistics.median(driver.clocks.launch_ms) if driver.clocks.launch_ms else None
    step = statistics.median(driver.clocks.step_ms) if driver.clocks.step_ms else None
    cold_ms = [r["decision_to_trading_ms"] for r in cold]
    summary: dict[str, Any] = {
        "wall_s": round(wall_s, 1),
        "ticks": c.tick,
        "aa_deploys": len(aa),
        "aa_false": len(false),
        "aa_false_rate": round(len(false) / len(aa), 4) if aa else None,
        "aa_outcomes": {s: sum(1 for d in aa if d["state"] == s) for s in sorted({d["state"] for d in aa})},
        "gap_ms": stats(gaps),
        "gap_book_mismatches": sum(1 for d in driver.deploys if d.get("book_matches") is False),
        "warm_rollback": {
            "decision_to_trading_ms": stats([r["decision_to_trading_ms"] for r in warm]),
            "submit_to_trading_ms": stats([r["submit_to_trading_ms"] for r in warm]),
            "gap_ms": stats([r["gap_ms"] for r in warm if r["gap_ms"] is not None]),
            "engine_duration_ms": stats([r["engine_duration_ms"] for r in warm]),
        },
        "cold_rollback": {
            "decision_to_trading_ms": stats(cold_ms),
            "submit_to_trading_ms": stats([r["submit_to_trading_ms"] for r in cold]),
            "gap_ms": stats([r["gap_ms"] for r in cold if r["gap_ms"] is not None]),
            "engine_duration_ms": stats([r["engine_duration_ms"] for r in cold]),
        },
        "hard_fault": {
            "engine_fault_to_decision_ms": stats(
                [f["engine_fault_to_decision_ms"] for f in faults if f["engine_fault_to_decision_ms"] is not None]
            ),
            "kill_to_decision_ms": stats([f["kill_to_decision_ms"] for f in faults]),
            "kill_to_trading_ms": stats([f["kill_to_trading_ms"] for f in faults if f["kill_to_trading_ms"]]),
            "kill_to_record_seen_ms": stats([f["kill_to_record_seen_ms"] for f in faults]),
            "lease_moved": sum(1 for f in faults if f["lease_moved"]),
        },
        "rollbacks_failed": [r for r in driver.rollbacks if r["status"] != "done"],
        "faults_skipped": [f for f in driver.faults if "skipped" in f],
        "anchors": {
            "slot_start_ms": stats(driver.clocks.launch_ms),
            "step_ms": stats(driver.clocks.step_ms),
        },
        "ratios": {
            "cold_rollback_over_slot_start": round(statistics.median(cold_ms) / launch, 2) if cold and launch else None,
            "gap_p50_over_step_p50": round(stats(gaps)["p50"] / step, 2) if gaps and step else None,
        },
        "restarts": c.restarts,
        "feed_gaps": c.feed_gaps,
        "timed_out": driver.timed_out,
        "targets": TARGETS,
    }
    fault_p = stats([f["kill_to_decision_ms"] for f in faults]).get("max")
    summary["met"] = {
        "gap_p99": bool(gaps) and summary["gap_ms"]["p99"] < TARGETS["gap_p99_ms"],
        "aa_false_rate": bool(aa) and summary["aa_false_rate"] < TARGETS["aa_false_rate"],
        "warm_rollback": bool(warm)
        and summary["warm_rollback"]["decision_to_trading_ms"]["max"] < TARGETS["warm_rollback_ms"],
        "cold_rollback": bool(cold)
        and summary["cold_rollback"]["decision_to_trading_ms"]["max"] < TARGETS["cold_rollback_ms"],
        "fault_to_decision": fault_p is not None and fault_p < TARGETS["fault_to_decision_ms"],
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploys", type=int, default=50, help="A/A deployments (fault ones come on top)")
    parser.add_argument("--quick", action="store_true", help="5 A/A deployments, one of each rollback: a smoke check")
    parser.add_argument("--deadline", type=float, default=900.0, help="stop the schedule after this many seconds")
    args = parser.parse_args()
    deploys, warm, cold, faults = (5, 1, 1, 1) if args.quick else (args.deploys, 5, 3, 5)
    os.environ.setdefault("SORTE_LOG_LEVEL", "warning")
    from sorte.logging import setup_logging

    setup_logging("warning", "console")
    plan = schedule(deploys, warm, cold, faults)
    with tempfile.TemporaryDirectory(prefix="sorte-bench-commander-") as tmp:
        repo = copy_project(Path(tmp) / "repo")
        settings = settings_for(repo, Path(tmp) / "var")
        driver = Driver(settings, repo, plan, args.deadline)
        commander = Commander(settings, observer=driver.clocks)
        t0 = time.monotonic()
        report = asyncio.run(commander.run(until=driver))
        wall = time.monotonic() - t0
        summary = summarise(driver, commander, wall)
        git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{'#':>3} {'kind':<6}{'then':<6}{'state':<13}{'watch':<7}{'gap ms':>8}{'s':>7}")
    for d in driver.deploys:
        gap = f"{d['gap_ms']:.1f}" if d.get("gap_ms") is not None else "-"
        print(
            f"{d['n']:>3} {d['kind']:<6}{d['then'] or '':<6}{d['state']:<13}"
            f"{'passed' if d['watch_passed'] else 'no':<7}{gap:>8}{d.get('s', 0):>7}"
        )
    print()
    for k, v in summary.items():
        print(f"{k:<28}{json.dumps(v)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "commander",
                "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "git": git_version,
                    "loadavg": os.getloadavg(),
                },
                "args": {"deploys": deploys, "warm": warm, "cold": cold, "faults": faults, "quick": args.quick},
                "summary": summary,
                "deploys": driver.deploys,
                "rollbacks": driver.rollbacks,
                "faults": driver.faults,
                "report": {"restarts": report.restarts, "ticks": report.ticks, "rollbacks": len(report.rollbacks)},
            },
            indent=2,
            default=str,
        )
    )
    return 0 if all(summary["met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
