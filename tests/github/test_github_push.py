"""push_branch with real git: a local bare repository as the remote (no token involved)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from sorte.github import BranchDiverged, GitHubError, GitHubNotFound, GitHubTarget, GitHubUnreachable, push_branch
from sorte.github.push import git_env

TOKEN = "ghp_pushT0kenNeverWritten42"
BRANCH = "sorte/run-7-wider-bands"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Trader",
    "GIT_AUTHOR_EMAIL": "trader@example.com",
    "GIT_COMMITTER_NAME": "Trader",
    "GIT_COMMITTER_EMAIL": "trader@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "--quiet", "-m", f"edit {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """A working repository on the run branch (one commit past main) and an empty bare remote."""
    work, bare = tmp_path / "work", tmp_path / "remote.git"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    commit(work, "strategy.py", "A = 1\n")
    git(work, "checkout", "--quiet", "-b", BRANCH)
    commit(work, "strategy.py", "A = 2\n")
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    return work, bare


def target(remote_url: str | None = None, **overrides: object) -> GitHubTarget:
    values: dict[str, object] = {"repo": "acme/strategies", "remote_url": remote_url, "retries": 0, "retry_delay_s": 0}
    values.update(overrides)
    return GitHubTarget.model_validate(values)


def remote_sha(bare: Path, branch: str = BRANCH) -> str:
    return git(bare, "rev-parse", f"refs/heads/{branch}")


def test_push_is_idempotent(repos: tuple[Path, Path]) -> None:
    work, bare = repos
    tip = git(work, "rev-parse", "HEAD")
    first = push_branch(work, BRANCH, target(str(bare)))
    assert first.pushed and first.sha == tip and first.branch == BRANCH
    assert remote_sha(bare) == tip
    again = push_branch(work, BRANCH, target(str(bare)))  # a resumed run
    assert not again.pushed and again.sha == tip
    assert remote_sha(bare) == tip

    newer = commit(work, "strategy.py", "A = 3\n")  # a fast-forward is pushed
    assert push_branch(work, BRANCH, target(str(bare))).pushed
    assert remote_sha(bare) == newer


def test_a_diverged_remote_branch_is_an_error_and_is_not_overwritten(repos: tuple[Path, Path], tmp_path: Path) -> None:
    work, bare = repos
    push_branch(work, BRANCH, target(str(bare)))
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", "--branch", BRANCH, str(bare), str(other))
    theirs = commit(other, "notes.md", "someone else\n")
    git(other, "push", "--quiet", "origin", BRANCH)
    commit(work, "strategy.py", "A = 4\n")
    with pytest.raises(BranchDiverged) as info:
        push_branch(work, BRANCH, target(str(bare)))
    assert BRANCH in str(info.value) and "diverged" in str(info.value)
    assert remote_sha(bare) == theirs


def test_a_local_branch_behind_the_remote_is_not_pushed(repos: tuple[Path, Path]) -> None:
    work, bare = repos
    commit(work, "strategy.py", "A = 5\n")
    ahead = push_branch(work, BRANCH, target(str(bare))).sha
    git(work, "reset", "--quiet", "--hard", "HEAD~1")
    with pytest.raises(BranchDiverged):
        push_branch(work, BRANCH, target(str(bare)))
    assert remote_sha(bare) == ahead


def test_named_remote(repos: tuple[Path, Path]) -> None:
    work, bare = repos
    git(work, "remote", "add", "origin", str(bare))
    assert push_branch(work, BRANCH, target(remote="origin")).pushed
    assert remote_sha(bare) == git(work, "rev-parse", "HEAD")
    with pytest.raises(GitHubError, match="No git remote named 'upstream'"):
        push_branch(work, BRANCH, target(remote="upstream"))


def test_clear_errors(repos: tuple[Path, Path], tmp_path: Path) -> None:
    work, bare = repos
    with pytest.raises(GitHubError, match="No local branch 'sorte/nope'"):
        push_branch(work, "sorte/nope", target(str(bare)))
    with pytest.raises(GitHubError, match="not a git repository"):
        push_branch(tmp_path / "missing", BRANCH, target(str(bare)))
    with pytest.raises(GitHubNotFound, match="not found"):
        push_branch(work, BRANCH, target(str(tmp_path / "no-such-remote.git")))


def test_token_is_sent_as_a_header_and_written_nowhere(repos: tuple[Path, Path]) -> None:
    work, _ = repos
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/acme/strategies.git"
    with pytest.raises(GitHubUnreachable) as info:
        push_branch(work, BRANCH, target(url, token=TOKEN))
    assert TOKEN not in str(info.value)
    assert TOKEN not in (work / ".git" / "config").read_text()
    env = git_env(url, target(url, token=TOKEN))
    headers = [env[k.replace("KEY", "VALUE")] for k, v in env.items() if k.startswith("GIT_CONFIG_KEY_")]
    assert any(h.startswith("AUTHORIZATION: basic ") for h in headers)
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert not any(k.startswith("GIT_CONFIG_KEY_") for k in git_env("/some/path.git", target(token=TOKEN)))
