"""Pushing a run's branch with GitPython, idempotently, without writing the token anywhere.

The token travels to git as an ``http.extraHeader`` through ``GIT_CONFIG_*`` environment
variables of the one git process: never on the command line (GitPython logs and puts the
command line into its errors), never in ``.git/config``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import git
import structlog

from sorte.github.target import (
    BranchDiverged,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubTarget,
    GitHubUnreachable,
    basic_auth,
    retry_call,
    strip_credentials,
)

log = structlog.get_logger("sorte.github")

UNREACHABLE = (
    "could not resolve host",
    "failed to connect",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "the remote end hung up unexpectedly",
    "returned error: 5",
)
AUTH = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "returned error: 401",
    "returned error: 403",
    "permission to",
)
NOT_FOUND = ("repository not found", "does not appear to be a git repository", "returned error: 404")
REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "updates were rejected")


@dataclass(frozen=True)
class PushResult:
    branch: str
    sha: str
    remote: str  # the remote URL without credentials
    pushed: bool  # False: the remote branch was already at ``sha``


class _GitFailure(Exception):
    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


def remote_url(repo: git.Repo, target: GitHubTarget) -> str:
    """Where ``target`` pushes: ``remote_url``, else the URL of the named remote, else github.com."""
    if target.remote_url:
        return target.remote_url
    if target.remote:
        try:
            return repo.remote(target.remote).url
        except ValueError:
            raise GitHubError(
                f"No git remote named {target.remote!r} in {repo.working_dir}: add it "
                f"(git remote add {target.remote} URL) or configure the remote URL instead"
            ) from None
    return f"https://github.com/{target.repo}.git"


def git_env(url: str, target: GitHubTarget) -> dict[str, str]:
    """Environment for one git process talking to ``url``: no prompt, the token as a header."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    token = target.secret()
    if token and url.startswith(("https://", "http://")):
        count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        env["GIT_CONFIG_COUNT"] = str(count + 1)
        env[f"GIT_CONFIG_KEY_{count}"] = "http.extraHeader"
        env[f"GIT_CONFIG_VALUE_{count}"] = f"AUTHORIZATION: basic {basic_auth(token)}"
    return env


def _run(repo: git.Repo, env: dict[str, str], *args: str) -> str:
    try:
        return repo.git.execute(["git", *args], env=env, with_extended_output=False)
    except git.GitCommandError as exc:
        raise _GitFailure(str(exc.stderr or "")) from None


def _transient(exc: Exception) -> bool:
    return isinstance(exc, _GitFailure) and any(s in exc.stderr.lower() for s in UNREACHABLE)


def _error(exc: _GitFailure, what: str, url: str, branch: str, target: GitHubTarget) -> GitHubError:
    detail = target.redact(exc.stderr.strip()) or "no output from git"
    low = detail.lower()
    shown = strip_credentials(url)
    if any(s in low for s in REJECTED):
        return BranchDiverged(
            f"The remote refused to update branch {branch!r} at {shown}: it has commits the local branch "
            f"does not have. Nothing was overwritten; inspect the remote branch or delete it. git said: {detail}"
        )
    if any(s in low for s in AUTH):
        return GitHubAuthError(
            f"git {what} to {shown} failed: authentication failed or permission denied. Check that the GitHub "
            f"token is set, not expired and allowed to write contents of {target.repo}. git said: {detail}"
        )
    if any(s in low for s in UNREACHABLE):
        return GitHubUnreachable(
            f"git {what} to {shown} failed after {target.retries + 1} attempt(s): the remote is unreachable. "
            f"Check the network and the remote URL. git said: {detail}"
        )
    if any(s in low for s in NOT_FOUND):
        return GitHubNotFound(
            f"git {what}: repository {shown} not found, or the token cannot see it. "
            f"Check the remote URL and the token's access. git said: {detail}"
        )
    return GitHubError(f"git {what} to {shown} failed: {detail}")


def push_branch(repo_path: Path | str, branch: str, target: GitHubTarget) -> PushResult:
    """Push local ``branch`` to the same branch on the target's remote.

    Idempotent: when the remote branch is already at the local tip nothing is pushed
    (``pushed=False``). A fast-forward is pushed; a remote branch with commits the local one
    lacks raises :class:`BranchDiverged` and is never force-pushed.
    """
    try:
        repo = git.Repo(repo_path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitHubError(f"{repo_path} is not a git repository") from None
    ref = f"refs/heads/{branch}"
    try:
        sha = repo.commit(ref).hexsha
    except (git.BadName, ValueError):
        raise GitHubError(f"No local branch {branch!r} in {repo.working_dir} to push") from None
    url = remote_url(repo, target)
    env = git_env(url, target)
    shown = strip_credentials(url)

    def call(what: str, *args: str) -> str:
        try:
            return retry_call(target, lambda: _run(repo, env, *args), _transient)
        except _GitFailure as exc:
            raise _error(exc, what, url, branch, target) from None

    listed = call("ls-remote", "ls-remote", url, ref)
    remote_sha = next((line.split()[0] for line in listed.splitlines() if line.endswith(f"\t{ref}")), None)
    if remote_sha == sha:
        log.info("github.push.up_to_date", branch=branch, sha=sha[:12], remote=shown)
        return PushResult(branch, sha, shown, pushed=False)
    if remote_sha is not None and not _is_ancestor(repo, remote_sha, sha):
        raise BranchDiverged(
            f"Branch {branch!r} on {shown} is at {remote_sha[:12]}, which is not an ancestor of the local tip "
            f"{sha[:12]}: the branches diverged. Nothing was pushed; inspect or delete the remote branch "
            f"(git push {shown} --delete {branch}) and publish again."
        )
    call("push", "push", "--porcelain", url, f"{sha}:{ref}")
    log.info("github.push.pushed", branch=branch, sha=sha[:12], remote=shown)
    return PushResult(branch, sha, shown, pushed=True)


def _is_ancestor(repo: git.Repo, ancestor: str, sha: str) -> bool:
    try:
        repo.git.merge_base("--is-ancestor", ancestor, sha)
    except git.GitCommandError:  # not an ancestor (status 1), or the remote commit is not even known here
        return False
    return True
