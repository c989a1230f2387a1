"""kill -9 of `sorte ask` / `sorte resume` while a node runs, then resume: the run ends merged
exactly once, with one branch, one commit on main, one deploy request (real processes, real
SQLite checkpoints, real git and the Docker guardian; the model is the fake provider reading
its answers from a file, so the restarted process gets the same ones)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from needs_docker import require_docker
from project_repo import copy_project, git

from commander import DeploymentHistory
from commander.status import HISTORY_FILE, commander_dir
from knowledge import open_store
from sorte.agent import Decision, runs
from sorte.agent.journal import read_audit
from sorte.config import load_settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REQUEST = "raise momentum's stop loss to 3%"
ANSWERS = {
    "Classify it": {"kind": "change", "strategy": "momentum", "language": "en", "summary": REQUEST},
    "Sorte's coder": {
        "summary": "Raise momentum's stop loss to 3%",
        "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
    },
}
CLI = "from sorte.cli.main import main; main()"


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path]:
    require_docker()
    repo = copy_project(tmp_path / "repo")
    (tmp_path / "answers.json").write_text(json.dumps(ANSWERS))
    fake = {"chain": [{"provider": "fake", "model": "scripted"}]}
    config = {
        "data_dir": str(tmp_path / "var"),
        "strategies_dir": str(repo / "strategies"),
        "sandbox": "docker",
        "git": {"repo_root": str(repo)},
        "llm": {
            "providers": {"fake": {"kind": "fake", "model_path": str(tmp_path / "answers.json")}},
            "roles": {"standard": fake, "coder": fake},
        },
    }
    (tmp_path / "sorte.yaml").write_text(yaml.safe_dump(config))
    return repo, tmp_path / "sorte.yaml"


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")} | {"SORTE_CONFIG": str(config)}
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        cwd=config.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_on_entering(proc: subprocess.Popen[bytes], data_dir: Path, node: str) -> str:
    """SIGKILL ``proc`` as soon as the audit log shows it entered ``node``; the run id."""
    deadline = time.monotonic() + 180
    while True:
        rows = [r for r in read_audit(data_dir) if r["node"] == node and r["event"] == "enter"]
        if rows:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return rows[-1]["run_id"]
        assert proc.poll() is None, f"the process ended before {node}: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, f"{node} was never entered"
        time.sleep(0.05)


def _finish(config: Path, run_id: str) -> None:
    settings = load_settings(config)
    resumed = asyncio.run(runs.resume_all(settings))  # what starting again does: every unfinished run
    assert [v.run_id for v in resumed] == [run_id]
    view = resumed[0]
    if view.status == "awaiting_approval":
        view = asyncio.run(runs.decide(settings, run_id, Decision(approve=True, by="test")))
    assert view.status == "done" and view.outcome == "merged", (view.outcome, view.reply)


@pytest.mark.parametrize("node", ["interpret", "plan", "edit", "validate", "publish", "deploy", "learn"])
def test_kill_9_at_a_node_then_resume(setup: tuple[Path, Path], node: str) -> None:
    repo, config = setup
    data_dir = config.parent / "var"
    main_before = git(repo, "rev-parse", "main")
    if node in ("publish", "deploy", "learn"):  # after the approval: kill the resumed process
        ask = _start(config, "ask", REQUEST, "--no-input")
        assert ask.wait(timeout=300) == 0, ask.stderr.read().decode()[-2000:]
        run_id = read_audit(data_dir)[0]["run_id"]
        run_id = _kill_on_entering(_start(config, "resume", run_id, "--approve"), data_dir, node)
    else:
        run_id = _kill_on_entering(_start(config, "ask", REQUEST, "--no-input"), data_dir, node)

    _finish(config, run_id)

    assert git(repo, "branch", "--list", f"sorte/{run_id}*").count("sorte/") == 1
    assert git(repo, "rev-list", "--count", f"{main_before}..main") == "1", "one commit, merged once"
    assert "0.03" in git(repo, "show", "main:strategies/momentum.py")
    requests = (data_dir / "agent" / "deploy_requests.jsonl").read_text().splitlines()
    assert [json.loads(r)["run_id"] for r in requests] == [run_id]
    with DeploymentHistory(commander_dir(data_dir) / HISTORY_FILE) as history:
        assert [(d.commit, d.state) for d in history.list()] == [(git(repo, "rev-parse", "main"), "requested")]
    settings = load_settings(config)
    store = open_store(settings.knowledge, settings.data_dir)
    assert store.count() == 1 and store.get(f"run-{run_id}").times_seen == 1, "one lesson, learned once"
    # The node running at the kill (this one, or the next if this one was quicker than the kill)
    # starts again after the restart; the path through the graph is otherwise the normal one.
    entered = [r["node"] for r in read_audit(data_dir, run_id) if r["event"] == "enter"]
    path = [n for i, n in enumerate(entered) if i == 0 or n != entered[i - 1]]
    assert path[path.index("recall") :] == [
        "recall",
        "plan",
        "edit",
        "validate",
        "approve",
        "publish",
        "deploy",
        "learn",
        "report",
    ]
