"""Opening the run's pull request through PyGithub, at most once per head branch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests
import structlog
from github import Auth, Github, GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository
from pydantic import BaseModel, ConfigDict

from sorte.github.target import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubTarget,
    GitHubUnreachable,
    GitHubValidationError,
    retry_call,
)

log = structlog.get_logger("sorte.github")
T = TypeVar("T")

TITLE_MAX = 256


class PullRequestInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    url: str
    created: bool  # False: an open pull request for the branch already existed


def client(target: GitHubTarget) -> Github:
    """PyGithub pointed at ``target.api_url``; its own retries are off (ours are bounded)."""
    token = target.secret()
    return Github(
        base_url=target.api_url,
        auth=Auth.Token(token) if token else None,
        timeout=int(max(1, round(target.timeout_s))),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def _transient(exc: Exception) -> bool:
    if isinstance(exc, GithubException):
        return exc.status >= 500
    return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout)


def _detail(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or "").strip()]
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            parts.append(str(err.get("message") or " ".join(f"{k}={v}" for k, v in err.items())))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p) or f"HTTP {exc.status}"


def _error(exc: Exception, what: str, target: GitHubTarget) -> GitHubError:
    where = f"{target.repo} at {target.api_url}"
    if not isinstance(exc, GithubException):
        return GitHubUnreachable(
            f"Cannot reach the GitHub API at {target.api_url} to {what} "
            f"({type(exc).__name__}, {target.retries + 1} attempt(s)). Check the network and the API URL."
        )
    detail = target.redact(_detail(exc))
    status = exc.status
    if status == 401 and target.secret() is None:
        return GitHubAuthError(
            f"GitHub authentication failed (401: {detail}) for {where}: no GitHub token is configured. "
            "Set a token with access to the repository."
        )
    if status == 401:
        return GitHubAuthError(
            f"GitHub authentication failed (401: {detail}) for {where}. The token is missing, wrong or expired: "
            "set a valid token with access to the repository."
        )
    if status == 403:
        return GitHubAuthError(
            f"GitHub refused to {what} on {where} (403: {detail}). The token lacks a permission "
            "(it needs 'Pull requests: write' and 'Contents: write') or a rate limit was hit."
        )
    if status == 404:
        return GitHubNotFound(
            f"GitHub repository {where} not found (404), or the token cannot see it (private repositories "
            "answer 404 to tokens without access). Check the owner/name and the token's repository access."
        )
    if status == 422:
        return GitHubValidationError(
            f"GitHub refused to {what} on {target.repo} (422: {detail}). Check that the branch was pushed, "
            f"has commits that {target.base!r} does not, and that the base branch exists."
        )
    if status >= 500:
        return GitHubUnreachable(
            f"GitHub answered {status} ({detail}) to {what} on {where} after {target.retries + 1} attempt(s); "
            "try again later."
        )
    return GitHubError(f"GitHub refused to {what} on {where} ({status}: {detail}).")


def _call(target: GitHubTarget, what: str, fn: Callable[[], T]) -> T:
    try:
        return retry_call(target, fn, _transient)
    except (GithubException, requests.exceptions.RequestException) as exc:
        raise _error(exc, what, target) from None


def _find_open(repo: Repository, head: str) -> PullRequest | None:
    return next(iter(repo.get_pulls(state="open", head=head)), None)


def _info(pr: PullRequest, created: bool) -> PullRequestInfo:
    return PullRequestInfo(number=pr.number, url=pr.html_url, created=created)


def open_or_get_pr(target: GitHubTarget, head_branch: str, title: str, body: str) -> PullRequestInfo:
    """The open pull request from ``head_branch`` into ``target.base``, opened if there is none.

    Idempotent: an open pull request with that head is returned as is (``created=False``), so
    a resumed run never opens a second one. A create that fails in transit (5xx, dropped
    connection) looks for the pull request again before retrying, as GitHub may have opened it.
    """
    gh = client(target)
    try:
        head = f"{target.owner}:{head_branch}"
        repo = _call(target, "read the repository", lambda: gh.get_repo(target.repo))
        existing = _call(target, "list pull requests", lambda: _find_open(repo, head))
        if existing is not None:
            log.info("github.pr.exists", repo=target.repo, number=existing.number, head=head_branch)
            return _info(existing, created=False)

        attempts = 0

        def create() -> tuple[PullRequest, bool]:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and (found := _find_open(repo, head)) is not None:
                return found, False  # the failed attempt did open it
            try:
                pr = repo.create_pull(base=target.base, head=head_branch, title=title[:TITLE_MAX], body=body)
            except GithubException as exc:
                if exc.status == 422 and "already exists" in _detail(exc):  # opened concurrently
                    found = _find_open(repo, head)
                    if found is not None:
                        return found, False
                raise
            return pr, True

        pr, created = _call(target, "open the pull request", create)
    finally:
        gh.close()
    log.info("github.pr.opened" if created else "github.pr.exists", repo=target.repo, number=pr.number)
    return _info(pr, created=created)
