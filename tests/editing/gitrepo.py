"""Real git repositories for the editing tests: a copy of strategies/ committed on main."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sorte.config import REPO_ROOT

USER_ENV = {
    "GIT_AUTHOR_NAME": "Trader",
    "GIT_AUTHOR_EMAIL": "trader@example.com",
    "GIT_COMMITTER_NAME": "Trader",
    "GIT_COMMITTER_EMAIL": "trader@example.com",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **USER_ENV, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    """A repository with a copy of strategies/ and one commit on main."""
    repo = root / "repo"
    shutil.copytree(REPO_ROOT / "strategies", repo / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text("/var/\n__pycache__/\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "initial")
    return repo
