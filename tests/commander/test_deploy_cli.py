"""`sorte deploy` and `sorte rollback` run for real: slot processes, shadow window, hand-over,
post-promotion watch, rollback to the warm slot, a refused redeploy, an idempotent rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commander import DeploymentHistory
from commander.status import HISTORY_FILE, commander_dir
from sorte.cli.main import app
from sorte.config import Settings
from tests.project_repo import branch, copy_project, git

pytestmark = pytest.mark.slow


@pytest.fixture()
def repo(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = copy_project(tmp_path / "repo")
    env = {
        "SORTE_DATA_DIR": str(tmp_path / "var"),
        "SORTE_STRATEGIES_DIR": str(repo / "strategies"),
        "SORTE_GIT__REPO_ROOT": str(repo),
        "SORTE_COMMANDER__SHADOW_BARS": "30",
        "SORTE_COMMANDER__WATCH_BARS": "30",
        "SORTE_COMMANDER__WARM_BARS": "50",
        "SORTE_COMMANDER__BATCH_INTERVAL_S": "0.01",
        "SORTE_RUNTIME__DEMO_BARS": "3000",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return repo


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def status() -> dict:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def history_dump(data_dir: Path) -> list:
    with DeploymentHistory(commander_dir(data_dir) / HISTORY_FILE) as history:
        return [(d.model_dump(), [e.model_dump() for e in history.events(d.id)]) for d in history.list(100)]


def test_deploy_rollback_refused_redeploy_and_idempotent_rollback(repo: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    text = (repo / "strategies" / "momentum.py").read_text()
    candidate = branch(repo, "candidate", {"strategies/momentum.py": "# same behaviour, new comment\n" + text})
    baseline = git(repo, "rev-parse", "main")

    result = cli("deploy", "candidate")
    assert result.exit_code == 0, result.output
    assert "requested" in result.output and "active" in result.output
    report = status()
    assert report["active"]["commit"] == candidate
    candidate_id = report["active"]["id"]
    assert report["previous"]["commit"] == baseline and report["previous"]["state"] in ("warm", "retired")

    result = cli("rollback", "--reason", "testing the way back")
    assert result.exit_code == 0, result.output
    assert "rolled back to deployment" in result.output
    report = status()
    assert report["active"]["commit"] == baseline
    assert report["lease"]["holder"] == report["active"]["slot"]

    before = history_dump(data_dir)
    result = cli("deploy", candidate[:12])
    assert result.exit_code == 2, result.output
    assert "rejected or rolled back" in result.output
    assert history_dump(data_dir) == before

    result = cli("rollback")
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert history_dump(data_dir) == before

    result = cli("rollback", "--to", "999")
    assert result.exit_code == 2, result.output
    assert "no deployment 999" in result.output
    result = cli("rollback", "--to", str(candidate_id))
    assert result.exit_code == 2, result.output
    assert "rolled_back; only a warm or retired one can come back" in result.output
    assert history_dump(data_dir) == before


def test_bad_input_writes_nothing(repo: Path, tmp_path: Path) -> None:
    result = cli("deploy", "not-a-ref")
    assert result.exit_code == 2, result.output
    assert "'not-a-ref' is not a commit" in result.output
    assert not commander_dir(tmp_path / "var").exists()

    result = cli("rollback", "--to", "999")
    assert result.exit_code == 2, result.output
    assert "nothing is active" in result.output
    assert not commander_dir(tmp_path / "var").exists()


def test_sorte_commander_trades_and_stops_cleanly_on_ctrl_c(repo: Path, tmp_path: Path) -> None:
    """A real SIGINT to a real `sorte commander`: exit 0, its slots gone, the ledger whole."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sorte.runtime.ledger import Ledger

    env = {**os.environ, "SORTE_COMMANDER__BATCH_INTERVAL_S": "0.05", "SORTE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sorte.cli.main", "commander", "-q"],
        env=env,
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ledger_file = commander_dir(tmp_path / "var") / "ledger.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _steps(ledger_file):
        time.sleep(0.2)
    assert _steps(ledger_file), "the commander never traded"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    slots = subprocess.run(["pgrep", "-f", f"commander.slot.*{tmp_path}"], capture_output=True, text=True)
    assert slots.stdout.strip() == "", "slot processes left behind"
    ledger = Ledger(ledger_file, durable=False)
    try:
        steps = [s for s, _, _ in ledger.equity_curve()]
        assert steps == list(range(len(steps))) and set(ledger.cursor().values()) == {len(steps) - 1}
    finally:
        ledger.close()
    assert status()["active"]["state"] == "active"


def _steps(ledger_file: Path) -> int:
    import sqlite3

    if not ledger_file.exists():
        return 0
    try:
        with sqlite3.connect(ledger_file) as db:
            return db.execute("SELECT COUNT(*) FROM equity").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
