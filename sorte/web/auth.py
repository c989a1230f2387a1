"""Who may read and who may act on the status page and its API.

One secret, ``settings.web.token``. The API takes it as ``Authorization: Bearer <token>``; the
browser gives it once on the login form and then carries a session cookie derived from it (so the
cookie never holds the token itself). Reading is open only on a loopback bind with ``open_read``;
everything else needs the token. Tokens are compared with ``hmac.compare_digest`` and never logged."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection

from sorte.config import Settings
from sorte.service import Principal

COOKIE = "sorte_session"
NO_TOKEN = "no token is configured: set SORTE_WEB__TOKEN (or web.token in sorte.yaml) to allow actions from the web"
OPERATOR = Principal(channel="web", id="token", role="operator", name="status page")


class AuthError(Exception):
    """Raised by the checks below; ``status`` is 401 (no or wrong token) or 403 (no token configured)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _secret(settings: Settings) -> str | None:
    token = settings.web.token
    value = token.get_secret_value() if token is not None else ""
    return value or None  # an empty token would let an empty header in


def session_value(token: str) -> str:
    """The cookie value for ``token``: a keyed digest, so a leaked cookie does not reveal the token."""
    return hmac.new(token.encode(), b"sorte-web-session", hashlib.sha256).hexdigest()


def _bearer(request: HTTPConnection) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_matches(settings: Settings, presented: str | None) -> bool:
    secret = _secret(settings)
    if secret is None or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), secret.encode())


def _session_ok(settings: Settings, request: HTTPConnection) -> bool:
    secret = _secret(settings)
    cookie = request.cookies.get(COOKIE)
    if secret is None or not cookie:
        return False
    return hmac.compare_digest(cookie.encode(), session_value(secret).encode())


def read_is_open(settings: Settings) -> bool:
    return settings.web.open_read and settings.web.loopback


def logged_in(settings: Settings, request: HTTPConnection) -> bool:
    """A valid bearer token or session cookie."""
    return token_matches(settings, _bearer(request)) or _session_ok(settings, request)


def check_read(settings: Settings, request: HTTPConnection) -> None:
    """Raise AuthError unless this request may read."""
    if read_is_open(settings):
        return
    if _secret(settings) is None:
        raise AuthError(403, "reading needs a token on this bind, but " + NO_TOKEN)
    if not logged_in(settings, request):
        raise AuthError(401, "reading needs the token: send 'Authorization: Bearer <token>' or log in")


def check_action_bearer(settings: Settings, request: HTTPConnection) -> Principal:
    """The API's check for actions: the bearer token only (no cookie, so no cross-site request can act)."""
    if _secret(settings) is None:
        raise AuthError(403, NO_TOKEN)
    presented = _bearer(request)
    if presented is None:
        raise AuthError(401, "this action needs the token: send 'Authorization: Bearer <token>'")
    if not token_matches(settings, presented):
        raise AuthError(401, "wrong token")
    return OPERATOR


def check_action_session(settings: Settings, request: HTTPConnection) -> Principal:
    """The page's check for actions: the session cookie (SameSite=Strict, so only our own forms carry it)."""
    if _secret(settings) is None:
        raise AuthError(403, NO_TOKEN)
    if not _session_ok(settings, request):
        raise AuthError(401, "log in with the token first (top right), then press the button again")
    return OPERATOR
