"""One mapping from the service layer's errors to HTTP status codes, shared by the API and the pages."""

from __future__ import annotations

from pydantic import BaseModel

from sorte.errors import SorteError
from sorte.service import (
    AgentError,
    CommitRejected,
    DeploymentError,
    Forbidden,
    NotFound,
    UnknownDeployment,
)
from sorte.web.auth import AuthError


class ErrorBody(BaseModel):
    detail: str


def status_for(exc: Exception) -> int:
    """The HTTP status for an error the service layer (or the auth checks) raised."""
    if isinstance(exc, AuthError):
        return exc.status
    if isinstance(exc, NotFound | UnknownDeployment):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    # A run not waiting for approval, nothing to roll back, a target that cannot come back, a
    # commander that refused: the request was fine, the state does not allow it.
    if isinstance(exc, AgentError | CommitRejected | DeploymentError):
        return 409
    if isinstance(exc, SorteError):
        return 400
    return 500


def message_for(exc: Exception) -> str:
    return exc.message if isinstance(exc, AuthError) else str(exc)


ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "Bad input"},
    401: {"model": ErrorBody, "description": "Missing or wrong token"},
    403: {"model": ErrorBody, "description": "No token configured (set SORTE_WEB__TOKEN)"},
    404: {"model": ErrorBody, "description": "No such run or deployment"},
}
