"""``sorte validate``: bad input is refused with exit code 2; a run id made by ``sorte edit`` is
validated for real in Docker and printed as JSON or markdown with the verdict's exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import copy_project
from typer.testing import CliRunner

from sorte.cli.main import app
from sorte.config import Settings
from sorte.editing import branches
from sorte.editing.plan import EditPlan
from tests.guardian.git_trees import Link, commit

PLAN = {
    "summary": "Slower momentum exit",
    "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture()
def env(settings: Settings, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SORTE_GIT__REPO_ROOT", str(repo))
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SORTE_LOG_LEVEL", "warning")
    return tmp_path / "var"


def invoke(*args: str):
    return CliRunner().invoke(app, ["validate", *args])


def test_unknown_branch_exits_2(env: Path) -> None:
    result = invoke("no-such-branch")
    assert result.exit_code == 2
    assert "no branch, commit or Sorte run 'no-such-branch'" in result.output
    assert not (env / "guardian").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["main", "--format", "yaml"], "--format must be"), (["main", "--sandbox", "vm"], "--sandbox must be")],
)
def test_bad_options_exit_2(env: Path, args: list[str], needle: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and needle in result.output


@pytest.mark.slow
def test_committed_absolute_symlink_is_a_clean_fail_naming_the_path(env: Path, repo: Path) -> None:
    """`git archive` + tarfile refused this tree with a traceback; now integrity names it."""
    commit(repo, "abs-symlink", {"strategies/momentum.py": Link("/etc/passwd"), "[red]x[/red].py": "x = 1\n"})
    result = invoke("abs-symlink", "--format", "json", "--sandbox", "local", "--fail-fast")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)
    integrity = next(g for g in data["gates"] if g["gate"] == "integrity")
    assert integrity["status"] == "fail"
    assert {f["file"] for f in integrity["findings"]} == {"strategies/momentum.py", "[red]x[/red].py"}
    assert "[red]x[/red].py" in result.stderr, "a path is text, not Rich markup"


def test_a_tree_that_cannot_be_built_is_one_line_exit_2(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("guardian.workspace.export_tree", full_disk)
    result = invoke("main", "--sandbox", "local")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: could not build the validation trees") and "No space left on device" in line
    assert not (env / "guardian" / "verdicts").exists()


@pytest.mark.docker
@pytest.mark.slow
def test_validates_an_edit_run_by_its_id(env: Path, repo: Path, settings: Settings) -> None:
    require_docker()
    edit_settings = settings.model_copy(update={"strategies_dir": repo / "strategies", "data_dir": env})
    outcome = branches.edit_on_branch(edit_settings, EditPlan.model_validate(PLAN), "stop loss 3%", None, False)
    assert outcome.commit

    result = invoke(outcome.run_id, "--format", "json", "--sandbox", "docker")
    data = json.loads(result.stdout)
    assert result.exit_code == {"pass": 0, "fail": 1, "inconclusive": 3}[data["overall"]]
    assert data["candidate"].startswith(outcome.branch + "@" + outcome.commit[:10])
    gates = {g["gate"]: g["status"] for g in data["gates"]}
    assert gates["integrity"] == "pass" and gates["security"] == "pass" and gates["tests"] == "pass", gates
    assert (env / "guardian" / "verdicts" / f"{outcome.commit[:12]}.json").is_file()

    markdown = invoke(outcome.run_id, "--format", "markdown")
    assert markdown.stdout.startswith("## Guardian verdict") and "| benchmark |" in markdown.stdout
