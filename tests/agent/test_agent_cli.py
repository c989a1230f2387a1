"""`sorte ask`, `sorte runs` and `sorte resume` from the terminal (no sandbox needed: a question and
bad input), with the fake provider answering from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sorte.cli.main import app
from sorte.config import Settings


@pytest.fixture()
def config(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    answers = {  # the first text the prompt contains picks the answer
        "how are things": {"kind": "status", "strategy": None, "language": "en", "summary": "status"},
        "desfaz o último deploy": {"kind": "rollback", "strategy": None, "language": "pt", "summary": "rollback"},
        "Classify it": {"kind": "help", "strategy": None, "language": "pt", "summary": "help"},
    }
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    fake = {"chain": [{"provider": "fake", "model": "scripted"}]}
    data = {
        "data_dir": str(tmp_path / "var"),
        "llm": {
            "providers": {"fake": {"kind": "fake", "model_path": str(tmp_path / "answers.json")}},
            "roles": {"standard": fake, "coder": fake},
        },
    }
    path = tmp_path / "sorte.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("SORTE_LOG_LEVEL", "warning")
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ask_a_question_lists_and_shows_the_run(config: Path) -> None:
    result = invoke("ask", "o que você sabe fazer?", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "Diga o que mudar" in result.stdout  # the answer in the user's language
    listing = invoke("runs", "--config", str(config))
    assert "answered" in listing.stdout and "help" in listing.stdout
    run_id = json.loads(next((config.parent / "var" / "agent" / "runs").glob("*.json")).read_text())["run_id"]
    shown = invoke("runs", "show", run_id, "--config", str(config))
    assert shown.exit_code == 0 and "o que você sabe fazer?" in shown.stdout


def test_status_counts_the_earlier_runs(config: Path) -> None:
    assert invoke("ask", "o que você sabe fazer?", "--config", str(config)).exit_code == 0
    result = invoke("ask", "how are things?", "--config", str(config))
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Agent runs: 1 (1 answered); waiting for approval: -" in out, out


def test_a_rollback_with_nothing_deployed_says_why_in_the_users_language(config: Path) -> None:
    result = invoke("ask", "desfaz o último deploy", "--config", str(config))
    assert "Não foi possível fazer o rollback: nothing is active" in result.stdout, result.output
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "   "], "empty request"),
        (["resume", "20991231-000000-abcdef"], "no run"),
        (["runs", "show", "nope"], "no run"),
    ],
)
def test_bad_input_exits_2(config: Path, args: list[str], needle: str) -> None:
    result = invoke(*args, "--config", str(config))
    assert result.exit_code == 2 and needle in result.output, result.output
