"""open_or_get_pr through the real PyGithub client against a local server speaking GitHub's REST API."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fake_github_api import FakeGitHub, FakeGitHubServer
from pydantic import ValidationError

from sorte.errors import SorteError
from sorte.github import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubTarget,
    GitHubUnreachable,
    GitHubValidationError,
    open_or_get_pr,
)

TOKEN = "ghp_s3cretT0kenForTests0123456789abcdef"
BRANCH = "sorte/run-1-tighten-stops"


@pytest.fixture
def api() -> Iterator[FakeGitHub]:
    with FakeGitHubServer(TOKEN) as server:
        server.add_repo("acme/strategies", BRANCH, "sorte/run-2-empty")
        yield server


def target(api: FakeGitHub, **overrides: object) -> GitHubTarget:
    values: dict[str, object] = {
        "repo": "acme/strategies",
        "token": TOKEN,
        "api_url": api.base_url,
        "retries": 2,
        "retry_delay_s": 0,
    }
    values.update(overrides)
    return GitHubTarget.model_validate(values)


def test_creates_once_and_a_resumed_run_gets_the_same_pr(api: FakeGitHub) -> None:
    first = open_or_get_pr(target(api), BRANCH, "Tighten stops", "the body")
    assert first.created and first.number == 1
    assert first.url == "https://github.example/acme/strategies/pull/1"
    assert api.posts() == 1
    pr = api.pulls["acme/strategies"][0]
    assert (pr["head"]["ref"], pr["base"]["ref"], pr["title"], pr["body"]) == (
        BRANCH,
        "main",
        "Tighten stops",
        "the body",
    )

    again = open_or_get_pr(target(api), BRANCH, "Tighten stops", "the body")  # a resumed run
    assert again.number == first.number and again.url == first.url and not again.created
    assert api.posts() == 1
    lookups = [path for method, path in api.requests if method == "GET" and "/pulls?" in path]
    assert all("head=acme%3Asorte%2Frun-1-tighten-stops" in p or "head=acme:sorte/run-1" in p for p in lookups)
    assert all("state=open" in p for p in lookups)


def test_title_is_bounded(api: FakeGitHub) -> None:
    open_or_get_pr(target(api), BRANCH, "x" * 1000, "body")
    assert len(api.pulls["acme/strategies"][0]["title"]) == 256


def test_bad_token_is_an_authentication_error_without_the_token(api: FakeGitHub) -> None:
    wrong = "ghp_wrongTokenValue999"
    with pytest.raises(GitHubAuthError) as info:
        open_or_get_pr(target(api, token=wrong), BRANCH, "t", "b")
    message = str(info.value)
    assert "authentication" in message.lower() and "401" in message
    assert wrong not in message and TOKEN not in message
    assert isinstance(info.value, GitHubError) and isinstance(info.value, SorteError)
    assert api.posts() == 0


def test_missing_token_is_an_authentication_error(api: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError, match="token"):
        open_or_get_pr(target(api, token=None), BRANCH, "t", "b")


def test_unknown_repository(api: FakeGitHub) -> None:
    with pytest.raises(GitHubNotFound) as info:
        open_or_get_pr(target(api, repo="acme/nope"), BRANCH, "t", "b")
    assert "acme/nope" in str(info.value) and "not found" in str(info.value)
    assert TOKEN not in str(info.value)


def test_validation_error_says_why(api: FakeGitHub) -> None:
    api.empty.add("sorte/run-2-empty")
    with pytest.raises(GitHubValidationError) as info:
        open_or_get_pr(target(api), "sorte/run-2-empty", "t", "b")
    assert "422" in str(info.value) and "No commits between main and sorte/run-2-empty" in str(info.value)
    with pytest.raises(GitHubValidationError, match="pushed"):
        open_or_get_pr(target(api), "sorte/never-pushed", "t", "b")
    assert api.pulls["acme/strategies"] == []


def test_a_502_is_retried(api: FakeGitHub) -> None:
    api.fail_next = [502]
    info = open_or_get_pr(target(api), BRANCH, "t", "b")
    assert info.created and info.number == 1
    assert api.requests[0] == api.requests[1] == ("GET", "/repos/acme/strategies")
    assert api.posts() == 1


def test_retries_are_bounded(api: FakeGitHub) -> None:
    api.fail_next = [502, 503, 502, 502]
    with pytest.raises(GitHubUnreachable, match="503"):
        open_or_get_pr(target(api, retries=1), BRANCH, "t", "b")
    assert len(api.requests) == 2  # one try and one retry
    assert api.posts() == 0


def test_client_errors_are_not_retried(api: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError):
        open_or_get_pr(target(api, token="ghp_bad"), BRANCH, "t", "b")
    assert len(api.requests) == 1


def test_a_create_lost_in_transit_is_not_repeated(api: FakeGitHub) -> None:
    api.lose_created = 1  # GitHub opened the pull request but the answer was a 502
    info = open_or_get_pr(target(api), BRANCH, "t", "b")
    assert info.number == 1 and not info.created
    assert api.posts() == 1
    assert len(api.pulls["acme/strategies"]) == 1


def test_unreachable_api() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    unreachable = GitHubTarget(
        repo="acme/strategies", token=TOKEN, api_url=f"http://127.0.0.1:{port}", retries=1, retry_delay_s=0
    )
    with pytest.raises(GitHubUnreachable) as info:
        open_or_get_pr(unreachable, BRANCH, "t", "b")
    assert f"127.0.0.1:{port}" in str(info.value) and "2 attempt(s)" in str(info.value)
    assert TOKEN not in str(info.value)


def test_target_validation_and_secret_handling() -> None:
    with pytest.raises(ValidationError, match="owner/name"):
        GitHubTarget(repo="just-a-name")
    with pytest.raises(ValidationError, match="http"):
        GitHubTarget(repo="a/b", api_url="ftp://example.com")
    t = GitHubTarget(repo="a/b", token=TOKEN, api_url="http://localhost:9/")
    assert t.api_url == "http://localhost:9" and t.owner == "a"
    assert TOKEN not in repr(t) and TOKEN not in str(t) and TOKEN not in t.model_dump_json()
    assert t.redact(f"x {TOKEN} https://u:{TOKEN}@host/r.git y") == "x *** https://u:***@host/r.git y"
