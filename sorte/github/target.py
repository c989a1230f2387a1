"""Where the agent publishes (a GitHub repository and a git remote) and the errors it raises."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sorte.errors import SorteError

log = structlog.get_logger("sorte.github")
T = TypeVar("T")

REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(SorteError):
    """Publishing to GitHub failed; the message says why and what to do, never the token."""


class GitHubAuthError(GitHubError):
    """401/403: the token is missing, wrong, expired or lacks a permission."""


class GitHubNotFound(GitHubError):
    """404: the repository does not exist or the token cannot see it."""


class GitHubValidationError(GitHubError):
    """422: GitHub refused the request (e.g. no commits between base and head)."""


class GitHubUnreachable(GitHubError):
    """The API or the remote could not be reached, or kept answering 5xx, after the retries."""


class BranchDiverged(GitHubError):
    """The remote branch has commits the local branch does not have; nothing was overwritten."""


class GitHubTarget(BaseModel):
    """A GitHub repository to open pull requests on, and the git remote to push branches to.

    ``remote_url`` wins over ``remote`` (the name of a remote configured in the local
    repository); with neither, branches go to ``https://github.com/<repo>.git``. The token
    authenticates both the REST API and https pushes; a file-path remote needs none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str = Field(description="owner/name")
    token: SecretStr | None = None
    api_url: str = "https://api.github.com"
    base: str = "main"
    remote: str | None = None
    remote_url: str | None = None
    timeout_s: float = Field(default=15.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10, description="extra attempts on 5xx and connection errors")
    retry_delay_s: float = Field(default=1.0, ge=0, description="first back-off delay, doubled each attempt")

    @field_validator("repo")
    @classmethod
    def _check_repo(cls, value: str) -> str:
        if not REPO_RE.match(value):
            raise ValueError(f"GitHub repository must be 'owner/name', got {value!r}")
        return value

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"GitHub API URL must be http(s)://..., got {value!r}")
        return value.rstrip("/")

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    def secret(self) -> str | None:
        token = self.token.get_secret_value() if self.token is not None else ""
        return token or None

    def redact(self, text: str) -> str:
        """``text`` with the token (plain or inside a Basic auth header) and URL passwords masked."""
        token = self.secret()
        if token:
            text = text.replace(token, "***").replace(basic_auth(token), "***")
        return re.sub(r"(https?://[^/\s:@]+):[^@/\s]+@", r"\1:***@", text)


def basic_auth(token: str) -> str:
    """The credential GitHub accepts for git over https (what actions/checkout sends)."""
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def strip_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (for messages)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def retry_call(target: GitHubTarget, fn: Callable[[], T], transient: Callable[[Exception], bool]) -> T:
    """``fn()``, tried again up to ``target.retries`` times while it raises a transient error
    (back-off ``retry_delay_s``, doubled each time); the last error propagates."""
    delay = target.retry_delay_s
    for attempt in range(target.retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == target.retries or not transient(exc):
                raise
            log.warning("github.retry", attempt=attempt + 1, of=target.retries + 1, error=type(exc).__name__)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
