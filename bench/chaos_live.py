"""Chaos soak on a live account: many hand-overs with real orders, kill -9 anywhere.

    .venv/bin/python bench/chaos_live.py [--handovers 1000] [--seed 20261206] [--tick-ms 40]
        [--reference-tick-ms 20] [--windows 5] [--commander-kills 20] [--limit-s 5400] [--keep DIR] [--out PATH]

The commander runs in its own process (``bench/chaos_live_runner.py``) with ``runtime.mode=live``
on the tests' fake Binance (REST and WebSocket, in this process, its clock moving one 1m candle
every ``--tick-ms``), through the real ccxt client: the active slot's orders go to the exchange
through the commander's gateway. The runner requests one A/A deployment after the other (new
commits of the same tree), hands back with a rollback after each clean promotion, and kills the
active slot or the candidate at seeded points (the replay chaos test's plans); this driver kills
the whole commander at seeded random moments and starts it again, until ``--handovers``
hand-overs happened. A reference commander then trades the same candles alone, on a fresh fake
exchange, with new entries stopped on the same bars as the chaos run's hand-overs.

The fake exchange fills a market order at the open of the candle after the bar it was decided on
(named in its client order id; a long id goes out hashed, and the fake reads what it stands for
from the gateway's journal), the paper broker's model: the book does not depend on when an
order arrived, so the two runs' books can be held equal.

Checked: 0 duplicate orders (each decision at the exchange once, whatever its epoch), 0
stale-epoch orders accepted (in the order the exchange got them, epochs never go down; none above
the lease's), 0 lost or doubled bars (one committed step per bar, the cursor at the last), fills,
positions, cash, realised PnL and the equity curve equal to the reference's, every hand-over's
book matching, the last reconciliation passing. Writes ``bench/results/chaos_live.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_exchange import FakeBinance  # noqa: E402

from commander.lease import Lease  # noqa: E402
from commander.reconcile import read_reconciliation  # noqa: E402
from commander.status import commander_dir  # noqa: E402
from sorte import paths  # noqa: E402
from tests.commander.chaos_runner import read_events  # noqa: E402
from tests.commander.test_chaos import book, busy_repo  # noqa: E402
from tests.project_repo import git  # noqa: E402

RESULTS = REPO / "bench" / "results" / "chaos_live.json"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
EPOCH = re.compile(r"^e(\d+):")


class Exchange:
    """The fake Binance and its clock, one candle every ``tick_s`` once started."""

    def __init__(self, tick_s: float, candles: int) -> None:
        self.fake = FakeBinance(SYMBOLS, bars=400, future=candles).start().start_stream()
        self.fake.fill_at_decision_open = True
        self.fake.balances["USDT"] = 1_000_000.0
        self.tick_s, self.go, self.stopped = tick_s, threading.Event(), threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self.go.wait()
        while not self.stopped.wait(self.tick_s):
            self.fake.advance(1)

    def stop(self) -> None:
        self.stopped.set()
        self.fake.stop()


def journal_ids(data_dir: Path) -> dict[str, str]:
    """Exchange client id -> Sorte's client order id, from the gateway's journal (a long id is
    sent hashed, ``sorte-<hash>``)."""
    path = paths.account_dir(data_dir) / "orders.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT exchange_client_id, client_order_id FROM sent").fetchall())
    finally:
        db.close()


def resolver(data_dir: Path) -> Callable[[str], str]:
    def resolve(cid: str) -> str:
        return cid if not cid.startswith("sorte-") else journal_ids(data_dir).get(cid, cid)

    return resolve


def runner(data_dir: Path, repo: Path, ex: Exchange, log: Path, *options: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        str(REPO / "bench" / "chaos_live_runner.py"),
        str(data_dir),
        str(repo),
        "--exchange",
        ex.fake.url,
        "--ws",
        ex.fake.ws_url,
        *options,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)


def handovers(data_dir: Path) -> int:
    return sum(1 for e in read_events(data_dir) if e["kind"] == "handoff")


def wait_ready(data_dir: Path, proc: subprocess.Popen[bytes], starts: int, limit: float) -> None:
    while time.monotonic() < limit and proc.poll() is None:
        if sum(1 for e in read_events(data_dir) if e["kind"] == "ready") > starts:
            return
        time.sleep(0.05)


def run_chaos(args: argparse.Namespace, repo: Path, commits: list[str], data_dir: Path, log: Path) -> dict[str, Any]:
    ex = Exchange(args.tick_ms / 1000, candles=400_000)
    ex.fake.resolve_client_id = resolver(data_dir)
    rng = random.Random(args.seed)
    options = ("--mode", "chaos", "--seed", str(args.seed), "--commits", ",".join(commits))
    options += ("--windows", str(args.windows))
    targets = sorted(rng.sample(range(5, args.handovers), min(args.commander_kills, args.handovers - 5)))
    kills, crashes, starts = 0, [], 0
    limit = time.monotonic() + args.limit_s
    try:
        while handovers(data_dir) < args.handovers and time.monotonic() < limit:
            proc = runner(data_dir, repo, ex, log, *options)
            wait_ready(data_dir, proc, starts, limit)
            starts += 1
            ex.go.set()  # the market moves once the first commander can take a step
            while proc.poll() is None and time.monotonic() < limit:
                done = handovers(data_dir)
                if done >= args.handovers:
                    (data_dir / "stop").touch()
                    proc.wait(120)
                    break
                if kills < len(targets) and done >= targets[kills]:
                    time.sleep(rng.uniform(0.0, 1.5))  # anywhere: in a step, a hand-over, a send
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    with (data_dir / "chaos-events.jsonl").open("a") as fh:
                        fh.write(json.dumps({"kind": "kill_commander", "t": time.time(), "pid": proc.pid}) + "\n")
                    break
                time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            elif proc.returncode not in (0, -9):
                crashes.append(f"the commander failed (exit {proc.returncode})")
                if len(crashes) >= 3:
                    break
        resolve = resolver(data_dir)
        placed = [
            (resolve(p["newClientOrderId"]), p["symbol"])
            for p in ex.fake.posted_orders()
            if p.get("newClientOrderId") in ex.fake.orders
        ]
        return {"placed": placed, "commander_kills": kills, "crashes": crashes}
    finally:
        ex.stop()


def run_reference(
    args: argparse.Namespace, repo: Path, data_dir: Path, log: Path, ticks: int, pauses: list[int]
) -> None:
    ex = Exchange(args.reference_tick_ms / 1000, candles=400_000)
    ex.fake.resolve_client_id = resolver(data_dir)
    try:
        proc = runner(
            data_dir, repo, ex, log, "--mode", "reference", "--ticks", str(ticks), "--pauses", json.dumps(pauses)
        )
        wait_ready(data_dir, proc, 0, time.monotonic() + 300)
        ex.go.set()
        if proc.wait(args.limit_s) != 0:
            raise SystemExit(f"the reference run failed:\n{log.read_text()[-4000:]}")
    finally:
        ex.stop()


def checks(chaos: Path, reference: Path, placed: list[tuple[str, str]]) -> tuple[dict[str, Any], list[str]]:
    broken: list[str] = []
    events = read_events(chaos)
    got, want = book(chaos), book(reference)
    with Lease(commander_dir(chaos)) as lease:
        final_epoch = lease.current().epoch
    steps = [s for s, _, _ in got["equity"]]
    n = len(steps)
    if steps != list(range(n)):
        broken.append(f"committed steps are not 0..{n - 1}: {sorted(set(range(n)) ^ set(steps))[:10]}")
    if len(set(got["cursor"].values())) != 1:
        broken.append(f"the cursor is {got['cursor']}")
    decisions = Counter(EPOCH.sub("", cid) for cid, _ in placed)
    twice = [d for d, k in decisions.items() if k > 1]
    if twice:
        broken.append(f"decisions sent to the exchange twice: {twice[:10]}")
    epochs = [int(m.group(1)) for cid, _ in placed if (m := EPOCH.match(cid))]
    if len(epochs) != len(placed):
        broken.append("an order at the exchange without an epoch")
    down = [(a, b) for a, b in zip(epochs, epochs[1:], strict=False) if b < a]
    if down:
        broken.append(f"an order of an older epoch accepted after a newer one: {down[:5]}")
    if epochs and max(epochs) > final_epoch:
        broken.append(f"an order above the lease's epoch {final_epoch}")
    handoffs = [e for e in events if e["kind"] == "handoff"]
    if not all(h["book_matches"] for h in handoffs):
        broken.append("a hand-over's book differs")
    for what in ("fills", "positions", "account"):
        if got[what] != want[what]:
            broken.append(f"the {what} differ from the reference")
    if [(s, e) for s, _, e in got["equity"]] != [(s, e) for s, _, e in want["equity"]]:
        broken.append("the equity curve differs from the reference")
    done = read_reconciliation(paths.account_dir(chaos))
    if done is None or not done.ok:
        broken.append(f"the last reconciliation did not pass: {done}")
    kinds = Counter(e["kind"] for e in events)
    figures = {
        "handovers": len(handoffs),
        "promotions": sum(1 for h in handoffs if h["handoff"] == "promote"),
        "rollbacks": sum(1 for h in handoffs if h["handoff"] == "rollback"),
        "steps": n,
        "orders_at_exchange": len(placed),
        "fills": len(got["fills"]),
        "final_epoch": final_epoch,
        "kill_active": kinds["kill_active"],
        "kill_candidate": kinds["kill_candidate"],
        "kill_commander": kinds["kill_commander"],
        "duplicate_orders": len(twice),
        "stale_epoch_orders": len(down),
    }
    return figures, broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--handovers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--tick-ms", type=float, default=40.0)
    parser.add_argument("--reference-tick-ms", type=float, default=20.0, help="the undisturbed run keeps up faster")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--commander-kills", type=int, default=20)
    parser.add_argument("--limit-s", type=float, default=5400.0)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="sorte-chaos-live-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    repo, _ = busy_repo(root / "repo")
    count = args.handovers  # up to two hand-overs per A/A deployment, fewer when it is killed
    commits = [git(repo, "commit-tree", "main^{tree}", "-p", "main", "-m", f"A/A {i}") for i in range(count)]
    chaos, reference = root / "chaos", root / "reference"
    run = run_chaos(args, repo, commits, chaos, root / "chaos.log")
    t_chaos = time.monotonic() - t0
    events = read_events(chaos)
    pauses = sorted({e["seqs"][0] for e in events if e["kind"] == "pause"})
    ticks = len(book(chaos)["equity"])
    run_reference(args, repo, reference, root / "reference.log", ticks, pauses)
    figures, broken = checks(chaos, reference, run["placed"])
    broken += run["crashes"]
    if figures["handovers"] < args.handovers:
        broken.append(f"only {figures['handovers']} hand-overs in {args.limit_s:.0f} s")
    out = {
        "benchmark": "chaos_live",
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": figures,
        "chaos_s": round(t_chaos, 1),
        "total_s": round(time.monotonic() - t0, 1),
        "broken": broken,
        "pass": not broken,
        "work_dir": str(root),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(figures, indent=1))
    print(f"chaos {t_chaos:.0f} s; {'PASS' if not broken else 'FAIL'}: " + ("; ".join(broken) or "all invariants hold"))
    return 0 if not broken else 1


if __name__ == "__main__":
    sys.exit(main())
