"""The README's own example, as a new user runs it: ``sorte ask "…" --approve`` in a fresh copy of
the project, with no config file, no environment override and no path given. The interpreter
reads it without a model; the guardian validates it in the sandbox; the one-line change merges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import copy_project, git

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


def _clean_env(repo: Path) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    return env | {"PYTHONPATH": str(repo)}  # this copy's code, as its own checkout would run it


@pytest.mark.parametrize(
    ("text", "done"),
    [("aumenta o stop loss do momentum para 3%", "Feito"), ("raise momentum's stop loss to 3%", "Done")],
)
def test_the_readme_example_merges_the_one_line_change(tmp_path: Path, text: str, done: str) -> None:
    require_docker()
    repo = copy_project(tmp_path / "sorte")
    before = git(repo, "rev-parse", "main")
    result = subprocess.run(
        [sys.executable, "-m", "sorte.cli.main", "ask", text, "--approve"],
        cwd=repo,
        env=_clean_env(repo),
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "momentum.stop_loss: 0.02 → 0.03" in result.stderr, result.stderr[-2000:]
    assert done in result.stdout, result.stdout
    after = git(repo, "rev-parse", "main")
    assert after != before
    changed = git(repo, "diff", "--numstat", before, after).splitlines()
    assert changed == ["1\t1\tstrategies/momentum.py"], changed
    assert '"default": 0.03' in git(repo, "diff", before, after)
    assert (repo / "var" / "agent").is_dir(), "the default data dir is ./var of the checkout"
