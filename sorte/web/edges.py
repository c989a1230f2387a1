"""The edge every request crosses before the app sees it.

From the headers alone, in this order: the ``Host`` header must name this server (so a page on
another site that rebinds its DNS name to 127.0.0.1 cannot talk to a loopback bind), the URL and
the declared body size must fit, and an action must carry its credential (the API's bearer token,
the pages' session cookie). Only then may the app read the body, and only up to
``web.max_body_bytes``: a streamed body that goes past it is cut off there, never buffered whole.
Every refused action, refused here or further in (a bad body, an unknown run, a run that does not
wait), leaves exactly one audit line: who, what, why; never the token and never the body."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sorte.config import Settings, WebSettings
from sorte.service import audit, audit_scope
from sorte.web.auth import OPERATOR, AuthError, check_action_bearer, check_action_session, logged_in

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names to recognise, not to bind
MAX_URL = 8192  # path and query together; no route of ours needs more than a few hundred characters
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSAL = "sorte.refusal"  # scope key where the error handlers leave the message of a refusal for the audit
_ACTION = re.compile(
    r"^(?P<api>/api/v1)?/(?:runs/(?P<run_id>.*)/(?P<decision>approve|reject)|(?P<plain>rollback|pause|resume))/?$"
)

ErrorPage = Callable[[Request, int, str], Response]


@dataclass(frozen=True)
class Attempt:
    """A request that tries to act: which action, through the API or a page form, on which run."""

    action: str
    api: bool
    run_id: str | None = None


def action_of(method: str, path: str) -> Attempt | None:
    """The action a request attempts, or None for a read. Any write method on an action's path
    counts (a PUT to /api/v1/rollback is a refused rollback, not a harmless 405), and so does an
    approval of a run id with slashes in it (/runs/../../x/approve)."""
    if method.upper() not in WRITES:
        return None
    match = _ACTION.match(path)
    if match is None:
        return None
    action = match["decision"] or match["plain"]
    return Attempt(action=action, api=match["api"] is not None, run_id=match["run_id"])


def allowed_hosts(web: WebSettings) -> frozenset[str]:
    """The names the Host header may carry: the bind address unless it is a wildcard, the
    configured extra names, and the loopback names on a loopback bind."""
    names = {name.strip().lower().strip("[]") for name in web.allowed_hosts if name.strip()}
    if web.host not in WILDCARD_BINDS:
        names.add(web.host.lower())
    if web.loopback:
        names |= LOOPBACK_NAMES
    return frozenset(names)


def host_name(header: str) -> str | None:
    """The name in a Host header without its port ('[::1]:8090' -> '::1'); None when malformed."""
    value = header.strip().lower()
    if value.startswith("["):  # an IPv6 literal
        name, close, rest = value[1:].partition("]")
        port_ok = rest == "" or (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit())
        return name if close and name and port_ok else None
    name, colon, port = value.partition(":")
    if colon and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    if not name or not re.fullmatch(r"[a-z0-9._-]+", name):
        return None
    return name


def _header(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]


def check_host(scope: Scope, allowed: frozenset[str]) -> str | None:
    """Why this request's Host header is refused, or None when it names this server."""
    hosts = _header(scope, b"host")
    if len(hosts) != 1:
        return "the request needs exactly one Host header"
    name = host_name(hosts[0])
    if name is None or name not in allowed:
        shown = hosts[0][:100].encode("ascii", "replace").decode()
        if not allowed:
            return f"Host {shown!r} refused: this server binds a wildcard address; list its names in web.allowed_hosts"
        return f"Host {shown!r} is not this server (set web.allowed_hosts to add a name)"
    return None


def check_size(scope: Scope, limit: int) -> tuple[int, str] | None:
    """(status, why) when the URL or the declared body is refused before anything is read."""
    url = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(scope.get("query_string", b""))
    if url > MAX_URL:
        return 414, f"the URL is {url} characters long; the limit is {MAX_URL}"
    lengths = _header(scope, b"content-length")
    if not lengths:
        return None
    if len(lengths) > 1 or _header(scope, b"transfer-encoding"):
        return 400, "conflicting Content-Length / Transfer-Encoding headers"
    value = lengths[0].strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        return 400, "Content-Length must be a whole number of bytes"
    if int(value) > limit:
        return 413, f"the request body is {int(value)} bytes; the limit is {limit} (web.max_body_bytes)"
    return None


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI re-raises it as it is."""


class _Gate:
    """Counts the body as the app reads it and stops the stream at the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive, self.limit = receive, limit
        self.read = 0
        self.over = False

    async def receive(self) -> Message:
        if self.over:  # the app asked again after the refusal: the client is as good as gone
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit:
                self.over = True
                raise BodyTooLarge(413, too_large(self.limit))
        return message


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (web.max_body_bytes)"


class Edge:
    """ASGI middleware: Host, sizes and action credentials first; then the app, with the body
    capped and refused actions audited once."""

    def __init__(self, app: ASGIApp, settings: Settings, error_page: ErrorPage) -> None:
        self.app, self.settings, self.error_page = app, settings, error_page
        self.allowed = allowed_hosts(settings.web)
        self.limit = settings.web.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        attempt = action_of(scope["method"], scope.get("path", ""))
        refusal = self.refusal(scope, attempt)
        if refusal is not None:
            status, message = refusal
            if attempt is not None:
                self.audit(scope, attempt, status, message)
            await self.answer(scope, status, message, send)
            return
        await self.forward(scope, receive, send, attempt)

    def refusal(self, scope: Scope, attempt: Attempt | None) -> tuple[int, str] | None:
        why = check_host(scope, self.allowed)
        if why is not None:
            return 400, why
        sized = check_size(scope, self.limit)
        if sized is not None:
            return sized
        if attempt is None:
            return None
        check = check_action_bearer if attempt.api else check_action_session
        try:
            check(self.settings, HTTPConnection(scope))
        except AuthError as exc:
            return exc.status, exc.message
        return None

    async def forward(self, scope: Scope, receive: Receive, send: Send, attempt: Attempt | None) -> None:
        gate = _Gate(receive, self.limit)
        status = 500  # what the client gets when the app raises past its own handlers
        replaced = False

        async def watch(message: Message) -> None:
            nonlocal status, replaced
            if replaced:
                return
            if gate.over:  # whatever the app made of the cut-off stream, the answer is a 413
                replaced, status = True, 413
                await self.answer(scope, 413, too_large(self.limit), send)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with audit_scope() as audited:
            try:
                await self.app(scope, gate.receive, watch)
            except BodyTooLarge:  # nothing in the app turned it into a response: do it here
                if replaced:
                    raise
                replaced, status = True, 413
                await self.answer(scope, 413, too_large(self.limit), send)
            finally:
                if attempt is not None and status >= 400 and not audited:
                    self.audit(scope, attempt, status, scope.get(REFUSAL) or f"HTTP {status}")

    async def answer(self, scope: Scope, status: int, message: str, send: Send) -> None:
        scope[REFUSAL] = message
        response = self.error_page(Request(scope), status, message)

        async def no_body() -> Message:  # the refusal never reads what the client sent
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)

    def audit(self, scope: Scope, attempt: Attempt, status: int, reason: str) -> None:
        conn = HTTPConnection(scope)
        who = OPERATOR.sender if logged_in(self.settings, conn) else "web:anonymous"
        fields: dict[str, Any] = {
            "status": status,
            "reason": reason[:300],
            "method": scope["method"][:10],
            "path": scope.get("path", "")[:200],
            "via": "api" if attempt.api else "page",
            "client": conn.client.host if conn.client else None,
        }
        if attempt.run_id is not None:
            fields["run_id"] = attempt.run_id[:100]
        audit(self.settings.data_dir, who, attempt.action, False, **fields)
