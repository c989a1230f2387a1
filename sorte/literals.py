"""Reading top-level literal assignments of a Python file without importing it.

Strategy parameters, the cascade definition and prompt templates are plain literals in
``strategies/``: code reads them (and the editor changes them in place) without running
the module."""

from __future__ import annotations

import ast
import copy
import functools
from pathlib import Path
from typing import Any

from sorte.errors import SorteError


def read_literals(path: Path, names: set[str], error: type[SorteError]) -> dict[str, Any]:
    """The values of the top-level ``NAME = <literal>`` assignments among ``names``."""
    try:
        found = _parsed_literals(path.read_text(), frozenset(names))
    except SyntaxError as exc:
        raise error(f"{path.name}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    except _NotALiteral as exc:
        raise error(f"{path.name}: {exc.name} must be a plain literal") from None
    return copy.deepcopy(found)  # callers own their copy; the cached one stays as parsed


class _NotALiteral(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# Parsing a file costs about a millisecond, far more than the backtest of a day of bars;
# the same text always gives the same literals, so it is parsed once per process.
@functools.lru_cache(maxsize=256)
def _parsed_literals(text: str, names: frozenset[str]) -> dict[str, Any]:
    tree = ast.parse(text)
    found: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in names:
            try:
                found[name] = ast.literal_eval(node.value)
            except ValueError:
                raise _NotALiteral(name) from None
    return found
