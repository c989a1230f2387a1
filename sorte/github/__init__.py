"""Publishing a run on GitHub: push its branch, open (or find) its pull request.

``push_branch`` pushes with git (GitPython), ``open_or_get_pr`` talks to the REST API through
PyGithub; both are idempotent, so a resumed run neither pushes twice nor opens a second
pull request. The token is a ``SecretStr``: never logged, never in an error message, a URL
or ``.git/config``.
"""

from sorte.github.body import BODY_MAX, pr_body
from sorte.github.pulls import PullRequestInfo, open_or_get_pr
from sorte.github.push import PushResult, push_branch
from sorte.github.target import (
    BranchDiverged,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubTarget,
    GitHubUnreachable,
    GitHubValidationError,
)

__all__ = [
    "BODY_MAX",
    "BranchDiverged",
    "GitHubAuthError",
    "GitHubError",
    "GitHubNotFound",
    "GitHubTarget",
    "GitHubUnreachable",
    "GitHubValidationError",
    "PullRequestInfo",
    "PushResult",
    "open_or_get_pr",
    "pr_body",
    "push_branch",
]
