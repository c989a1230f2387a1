"""kill -9 of the runtime loses no filled order and duplicates none: a run killed at random
points and restarted ends with exactly the ledger of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sorte.runtime.ledger import Ledger

pytestmark = pytest.mark.slow

BARS = 1500


def env_for(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    env.update(
        {
            "SORTE_DATA_DIR": str(tmp_path / "var"),
            "SORTE_RUNTIME__DEMO_BARS": str(BARS),
            "SORTE_BROKER__ALLOW_SHORT": "true",
            "SORTE_LOG_LEVEL": "warning",
        }
    )
    return env


def sorte_run(tmp_path, ledger, **popen):
    cmd = [sys.executable, "-m", "sorte.cli.main", "run", "--quiet", "--ledger", str(ledger)]
    return subprocess.Popen(
        cmd, env=env_for(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def committed_steps(ledger) -> int:
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
        row = db.execute("SELECT COUNT(*) FROM equity").fetchone()
        db.close()
        return int(row[0])
    except sqlite3.Error:
        return 0


def ledger_state(path):
    ledger = Ledger(path, durable=False)
    fills = [(f.client_order_id, f.seq, f.side, f.qty, f.price, f.fee, f.purpose) for f in ledger.fills()]
    positions = {s: (p.qty, p.entry_price) for s, p in ledger.positions().items()}
    state = (fills, positions, ledger.account(), ledger.cursor(), ledger.equity_curve())
    ledger.close()
    return state


def test_kill_minus_nine_at_random_points_loses_and_duplicates_nothing(tmp_path):
    reference = tmp_path / "reference.db"
    proc = sorte_run(tmp_path, reference)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out

    crashed = tmp_path / "crashed.db"
    rng = random.Random(20261122)
    kills = 0
    for target in sorted(rng.sample(range(50, BARS - 50), 4)):
        proc = sorte_run(tmp_path, crashed)
        deadline = time.time() + 120
        while committed_steps(crashed) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
    assert kills >= 3, "the runtime finished before it could be killed: make the run longer"
    proc = sorte_run(tmp_path, crashed)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "resuming" in out

    fills, positions, account, cursor, curve = ledger_state(crashed)
    ref = ledger_state(reference)
    assert len(fills) > 20
    assert len({f[0] for f in fills}) == len(fills)  # no duplicate order fill
    assert fills == ref[0]
    assert positions == ref[1] and account == ref[2] and cursor == ref[3]
    assert curve == ref[4]  # no lost or repeated step

    journal = crashed.with_suffix(".journal.jsonl").read_text().splitlines()
    ids = [json.loads(line)["client_order_id"] for line in journal if line.strip().startswith("{")]
    assert ids == [f[0] for f in fills]  # the journal caught up with every committed fill
