"""Reading top-level literal assignments of a Python file without importing it.

Strategy parameters, the cascade definition and prompt templates are plain literals in
``strategies/``: code reads them (and the editor changes them in place) without running
the module."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from sorte.errors import SorteError


def read_literals(path: Path, names: set[str], error: type[SorteError]) -> dict[str, Any]:
    """The values of the top-level ``NAME = <literal>`` assignments among ``names``."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise error(f"{path.name}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    found: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in names:
            try:
                found[name] = ast.literal_eval(node.value)
            except ValueError:
                raise error(f"{path.name}: {name} must be a plain literal") from None
    return found
