"""A throw-away git repository holding this project's files, and candidate branches on it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sorte.config import REPO_ROOT

IDENTITY = ["-c", "user.name=Sorte Test", "-c", "user.email=test@localhost"]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree (what a commit would hold)."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("the project is not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted({f for f in out.split("\0") if f and (REPO_ROOT / f).is_file()})


def copy_project(dest: Path) -> Path:
    """``dest`` as a git repository whose ``main`` holds the project as it is on disk."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "baseline")
    return dest


def branch(repo: Path, name: str, changes: dict[str, str | None], message: str = "candidate") -> str:
    """Commit ``changes`` (path -> new text, or None to delete) on a new branch from main."""
    git(repo, "checkout", "-q", "-b", name, "main")
    try:
        for rel, text in changes.items():
            path = repo / rel
            if text is None:
                git(repo, "rm", "-q", rel)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(repo, "add", rel)
        git(repo, "commit", "-q", "-m", message)
        return git(repo, "rev-parse", "HEAD")
    finally:
        git(repo, "checkout", "-q", "main")


def patch_function(repo: Path, rel: str, old: str, new: str) -> str:
    """The text of ``rel`` on main with ``old`` replaced by ``new`` (which must occur once)."""
    text = git(repo, "show", f"main:{rel}") + "\n"
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    return text.replace(old, new)
