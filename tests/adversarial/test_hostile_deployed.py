"""Deployed strategy code is contained (issue 14: "sorte run in a branch worktree printed and
stored a secret in the ledger").

A strategy that trades every bar and puts what it can read into its reason runs through the
real ``sorte run`` and ``sorte backtest`` commands, with a canary secret in their environment
and in the checkout's ``.env``. Its reasons reach the printed decisions and the ledger (so the
test sees what it saw), and the canary must be in none of them, nor anywhere in the data dir.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.canary import CANARY, SECRET_VARIABLES, assert_no_canary

pytestmark = pytest.mark.slow

PROBE = '''\
"""Trades every bar and reports what it can read."""
import numpy as np
import os

PARAMS = {
    "stop_loss": {"type": "float", "default": 0.0, "min": 0.0, "max": 0.5, "doc": "none"},
}


def lookback(p):
    return 1


def _seen():
    found = []
    for path in (".env", "../.env", os.path.expanduser("~/.env")):
        try:
            found.append(open(path).read())
        except OSError as exc:
            found.append(type(exc).__name__)
    for name, value in os.environ.items():
        found.append(name + "=" + value)
    return "probe: " + " | ".join(found)


def features(bars, p):
    return {"n": len(bars.close)}


def decide(f, p):
    n = f["n"]
    return np.ones(n), np.ones(n, dtype=np.int8), np.array([_seen()[:280]] * n, dtype=object)
'''

CASCADE = """\
\"\"\"A one-stage cascade around the probe.\"\"\"

MIN_CONFIDENCE = 0.5

STAGES = [
    {"name": "probe", "kind": "strategy", "strategy": "probe", "threshold": 0.0, "weight": 1.0, "enabled": True},
]
"""


@pytest.fixture()
def project(tmp_path: Path) -> dict:
    root = tmp_path / "checkout"
    strategies = root / "strategies"
    strategies.mkdir(parents=True)
    (strategies / "__init__.py").write_text("")
    (strategies / "probe.py").write_text(PROBE)
    (strategies / "cascade.py").write_text(CASCADE)
    (root / ".env").write_text(f"SORTE_EXCHANGE__API_SECRET={CANARY}\n")
    data = tmp_path / "var"
    return {"root": root, "data": data, "env": canary_env(data, strategies)}


def canary_env(data: Path, strategies: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its SORTE_ settings, the canary in every secret's name,
    and a small demo market."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    env.update({name: CANARY for name in SECRET_VARIABLES})
    env.update(
        {
            "SORTE_DATA_DIR": str(data),
            "SORTE_STRATEGIES_DIR": str(strategies),
            "SORTE_RUNTIME__DEMO_BARS": "120",
            "SORTE_RUNTIME__DEMO_SYMBOLS": "2",
            "COLUMNS": "300",
            **extra,
        }
    )
    return env


def _sorte(project: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sorte.cli.main", *args],
        cwd=project["root"],
        env=project["env"],
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_cascade_file_is_read_as_written(project: dict) -> None:
    """Guards the fixture: a cascade the runtime would refuse would make the next tests vacuous."""
    from sorte.runtime.cascade import read_cascade

    definition = read_cascade(project["root"] / "strategies" / "cascade.py")
    assert [s.strategy for s in definition.enabled_stages] == ["probe"]


def test_sorte_run_stores_what_the_strategy_saw_and_no_secret(project: dict) -> None:
    done = _sorte(project, "run", "--max-steps", "30")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "probe: " in done.stdout, "the probe never reported: the test would prove nothing"
    ledger = next(project["data"].rglob("ledger.db"))
    with sqlite3.connect(ledger) as db:
        reasons = [r[0] for r in db.execute("SELECT reason FROM orders") if r[0]]
    assert any("probe: " in r for r in reasons), "no order carries the probe's reason"
    assert any("FileNotFoundError" in r for r in reasons), reasons[:1]
    assert_no_canary(done.stdout, done.stderr, reasons, project["data"])


def test_sorte_backtest_prints_no_secret(project: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _sorte(project, "backtest", "probe", "--trades", str(out / "trades.csv"), "--json", str(out / "m.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert_no_canary(done.stdout, done.stderr, out, project["data"])


def test_sorte_up_slots_store_no_secret(tmp_path: Path) -> None:
    """The commander's slots (blue/green, active and shadow) through `sorte up` on a checkout whose
    committed cascade is the probe: the slot's strategy worker sees no variable and no `.env`."""
    from commander.status import commander_dir
    from tests.project_repo import copy_project, git

    repo = copy_project(tmp_path / "repo")
    (repo / "strategies" / "probe.py").write_text(PROBE)
    (repo / "strategies" / "cascade.py").write_text(CASCADE)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "probe")
    (repo / ".env").write_text(f"SORTE_EXCHANGE__API_SECRET={CANARY}\nSORTE_WEB__TOKEN={CANARY}\n")
    data = tmp_path / "var"
    env = canary_env(data, repo / "strategies", SORTE_GIT__REPO_ROOT=str(repo))
    done = subprocess.run(
        [sys.executable, "-m", "sorte.cli.main", "up", "--port", "0", "--interval", "0", "--max-ticks", "40"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    with sqlite3.connect(commander_dir(data) / "ledger.db") as db:
        reasons = [r[0] for r in db.execute("SELECT reason FROM orders") if r[0]]
    assert any("probe: " in r for r in reasons), "no order carries the probe's reason"
    assert_no_canary(done.stdout, done.stderr, reasons, data)
