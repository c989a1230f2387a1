"""A canary secret for the hostile suite: set in the environment of every hostile run, and
looked for in everything the run left behind (outputs, files, messages, HTTP bodies).

A strategy, a test or a plan that could read the environment of a process holding secrets
would find the canary and could only leak it into something the suite then scans, so a
single occurrence anywhere is an escape.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import pytest

#: One value per test session, so a value cached by an earlier run cannot pass for a leak.
CANARY = "sorte-canary-" + secrets.token_hex(12)

#: Where real secrets live: the settings' secret fields, and common names of other tools' tokens.
SECRET_VARIABLES = (
    "SORTE_EXCHANGE__API_KEY",
    "SORTE_EXCHANGE__API_SECRET",
    "SORTE_GITHUB__TOKEN",
    "SORTE_CANARY_SECRET",
    "CANARY_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "GITHUB_TOKEN",
)


def set_canary(monkeypatch: pytest.MonkeyPatch, names: Iterable[str] = SECRET_VARIABLES) -> str:
    """Put the canary in the environment of this process (and so of every child it starts)."""
    for name in names:
        monkeypatch.setenv(name, CANARY)
    return CANARY


def _texts(thing: object) -> Iterable[tuple[str, bytes]]:
    if thing is None:
        return
    if isinstance(thing, Path):
        if thing.is_symlink():
            yield str(thing), os.readlink(thing).encode()
        elif thing.is_dir():
            for p in sorted(thing.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    yield str(p), p.read_bytes()
        elif thing.is_file():
            yield str(thing), thing.read_bytes()
        return
    if isinstance(thing, bytes):
        yield "bytes", thing
        return
    if isinstance(thing, str):
        yield "text", thing.encode()
        return
    if isinstance(thing, dict):
        for k, v in thing.items():
            yield from _texts(str(k))
            yield from _texts(v)
        return
    if isinstance(thing, (list, tuple, set)):
        for item in thing:
            yield from _texts(item)
        return
    yield type(thing).__name__, repr(thing).encode()


def assert_no_canary(*things: object) -> None:
    """Fail when the canary appears in any of ``things``: text, bytes, files or folders (read
    recursively), or containers of those."""
    needle = CANARY.encode()
    for where, data in (pair for thing in things for pair in _texts(thing)):
        assert needle not in data, f"the canary secret leaked into {where}"
