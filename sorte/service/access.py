"""Who may do what, and the audit log of what was done or refused.

Two roles: a viewer reads; an operator also approves, rejects, rolls back, pauses and asks for
changes. Front-ends map their own identities (a Telegram user, the status page's token, the
local terminal) to a :class:`Principal`; the actions check it and write one audit line each,
refusals included."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from commander.alerts import read_jsonl
from sorte import paths
from sorte.errors import SorteError

Role = Literal["viewer", "operator"]
# The actions audited inside the current audit_scope(): a front-end audits a refusal itself only when
# nothing below it did, so every refusal leaves exactly one line.
_scope: ContextVar[list[str] | None] = ContextVar("sorte_audit_scope", default=None)


class Forbidden(SorteError):
    """The caller's role does not allow the action."""


class Principal(BaseModel):
    channel: str  # telegram, web, cli
    id: str
    role: Role
    name: str = ""

    @property
    def sender(self) -> str:
        return f"{self.channel}:{self.id}"


LOCAL = Principal(channel="cli", id="local", role="operator", name="terminal")


def audit(data_dir: Path, who: str, action: str, ok: bool, **fields: Any) -> None:
    """Append one line to ``<data_dir>/audit.jsonl`` (one write, so lines from several processes do not mix)."""
    path = paths.actions_audit(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": time.time(), "who": who, "action": action, "ok": ok, **fields}, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    seen = _scope.get()
    if seen is not None:
        seen.append(action)


@contextmanager
def audit_scope() -> Iterator[list[str]]:
    """Collect the actions audited while the block runs (worker threads that copy the context included)."""
    seen: list[str] = []
    token = _scope.set(seen)
    try:
        yield seen
    finally:
        _scope.reset(token)


def read_audit(data_dir: Path, limit: int = 100) -> list[dict[str, Any]]:
    return read_jsonl(paths.actions_audit(data_dir), limit)


def require_operator(data_dir: Path, who: Principal, action: str, **fields: Any) -> None:
    """Raise Forbidden (and audit the refusal) unless ``who`` is an operator."""
    if who.role != "operator":
        audit(data_dir, who.sender, action, False, reason="not an operator", **fields)
        raise Forbidden(f"{action} needs the operator role; {who.sender} is a {who.role}")
