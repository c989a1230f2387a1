"""Each deployment runs from its own detached git worktree at its commit, never from the
checkout the user edits: ``<commander dir>/worktrees/<commit[:12]>``, shared by the
deployments of one commit (read-only use: slots write nothing into their tree)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import git

from commander.deployment import DeploymentError

_lock = threading.Lock()  # git worktree add/prune on one repository, one at a time


def resolve_commit(repo_root: Path, ref: str) -> str:
    """The full sha of ``ref`` (a sha, a branch, a tag); a clear error when it is not one."""
    if not ref or ref.startswith("-"):
        raise DeploymentError(f"{ref!r} is not a commit: give a sha, a branch or a tag")
    try:
        return git.Repo(repo_root).git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        raise DeploymentError(f"{ref!r} is not a commit of {repo_root}: `git log` lists them") from None


def ensure_worktree(repo_root: Path, commit: str, root: Path) -> Path:
    """The worktree of ``commit`` under ``root``, created (or repaired) when needed."""
    path = (root / commit[:12]).resolve()
    with _lock:
        repo = git.Repo(repo_root)
        if (path / ".git").is_file():
            try:
                if git.Repo(path).head.commit.hexsha == commit:
                    return path
            except (git.GitError, ValueError):
                pass
            repo.git.worktree("remove", "--force", str(path))
        if path.exists():  # a leftover of a crashed `worktree add`
            shutil.rmtree(path)
        repo.git.worktree("prune")
        root.mkdir(parents=True, exist_ok=True)
        repo.git.worktree("add", "--detach", "--force", str(path), commit)
        return path


def remove_worktree(repo_root: Path, path: Path) -> None:
    with _lock:
        repo = git.Repo(repo_root)
        if path.exists():
            repo.git.worktree("remove", "--force", str(path))
        repo.git.worktree("prune")
