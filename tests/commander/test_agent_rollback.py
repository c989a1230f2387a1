"""`sorte ask "volta a versão anterior"`: the agent rolls back through the commander."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from commander.engine import Commander
from sorte.cli.main import app
from tests.commander.commander_env import commander_settings, deploy, history
from tests.project_repo import branch, copy_project

pytestmark = pytest.mark.slow


def test_the_agent_rolls_back_once_and_says_so_in_portuguese(tmp_path: Path, monkeypatch) -> None:
    repo = copy_project(tmp_path / "repo")
    settings = commander_settings(repo, tmp_path / "var")
    asyncio.run(Commander(settings).run(max_ticks=60))
    text = (repo / "strategies" / "momentum.py").read_text() + "\n# same behaviour, another commit\n"
    did, _ = deploy(settings, branch(repo, "comment", {"strategies/momentum.py": text}), "aa")
    assert history(settings).active().id == did

    answers = {"volta a versão anterior": {"kind": "rollback", "strategy": None, "language": "pt", "summary": "undo"}}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    fake = {"chain": [{"provider": "fake", "model": "scripted"}]}
    config = {
        **json.loads(settings.model_dump_json(include={"data_dir", "strategies_dir", "git", "runtime", "commander"})),
        "llm": {
            "providers": {"fake": {"kind": "fake", "model_path": str(tmp_path / "answers.json")}},
            "roles": {"standard": fake, "coder": fake},
        },
    }
    path = tmp_path / "sorte.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SORTE_LOG_LEVEL", "warning")

    first = CliRunner().invoke(app, ["ask", "volta a versão anterior", "--config", str(path)])
    assert first.exit_code == 0, first.output
    assert f"Rollback: rolled back to deployment {did - 1}" in first.stdout
    h = history(settings)
    assert h.active().id == did - 1 and h.get(did).state == "rolled_back"
    assert "asked by cli:local" in h.get(did).reason

    second = CliRunner().invoke(app, ["ask", "volta a versão anterior", "--config", str(path)])
    assert second.exit_code == 0 and "nothing to do" in second.stdout, second.output
    assert history(settings).active().id == did - 1
