"""`sorte status`: the lease, the slots and the deployments, read from the commander's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commander import DeploymentHistory, Lease
from commander.status import HISTORY_FILE, commander_dir
from sorte.cli.main import app
from sorte.config import Settings


@pytest.fixture()
def data_dir(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def test_empty_state(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "lease: free (epoch 0)" in result.stdout and "no deployments yet" in result.stdout
    assert "commander: not running" in result.stdout


def test_a_running_commander_and_the_latest_alerts_are_shown(data_dir: Path) -> None:
    from commander.alerts import Alerts
    from commander.inbox import CommanderLock

    folder = commander_dir(data_dir)
    Alerts(folder).emit("rollback", "rolled back deployment 2 to 1: crash: [Errno 104] reset")
    lock = CommanderLock(folder)
    lock.acquire()
    try:
        result = CliRunner().invoke(app, ["status"])
        as_json = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    assert "commander: running" in result.stdout
    assert "alert rollback: rolled back deployment 2 to 1: crash: [Errno 104] reset" in result.stdout
    assert as_json["running"] is True and as_json["alerts"][0]["kind"] == "rollback"


def test_active_and_previous_deployments_with_the_lease(data_dir: Path) -> None:
    folder = commander_dir(data_dir)
    with DeploymentHistory(folder / HISTORY_FILE) as history, Lease(folder) as lease:
        for commit, slot in (("a" * 40, "blue"), ("b" * 40, "green")):
            d = history.create(commit, slot, "cli")
            for state in ("starting", "shadow", "analysing", "promoting", "active"):
                history.transition(d.id, state)
        lease.acquire("blue", expect_epoch=None)
        lease.transfer("blue", "green", 1)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "lease: green at epoch 2" in result.stdout
    assert "active: #2 bbbbbbbbbbbb active" in result.stdout
    assert "previous: #1 aaaaaaaaaaaa warm" in result.stdout
    data = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert data["lease"]["holder"] == "green" and data["slots"]["blue"]["commit"] == "a" * 40
