"""Guards the editor enforces in code, not in prompts: which paths may change, which code may
be written, and a hash manifest proving nothing outside the editable area changed."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath

EDITABLE = "strategies"
NEW_TESTS = "tests/strategies"
PROTECTED = ("tests", "guardian", "bench", "sorte", "commander", "sandbox", "knowledge")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}

FORBIDDEN_MODULES = {
    "subprocess",
    "socket",
    "requests",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "aiohttp",
    "websocket",
    "websockets",
    "ftplib",
    "smtplib",
    "telnetlib",
    "ctypes",
    "importlib",
    "pty",
    "shutil",
    "multiprocessing",
    "builtins",
    "ccxt",
}
# Strategy code imports only these (tests, added under tests/strategies/, get the deny-list alone).
STRATEGY_IMPORTS = {
    "numpy",
    "pandas",
    "math",
    "statistics",
    "sorte.indicators",
    "__future__",
    "typing",
    "dataclasses",
    "functools",
    "itertools",
    "collections",
    "enum",
}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint", "globals", "vars"}
FORBIDDEN_NAMES = {
    "__builtins__",
    "__import__",
    "__subclasses__",
    "__globals__",
    "__code__",
    "__closure__",
    "__bases__",
}
OS_FORBIDDEN = {"system", "popen", "remove", "unlink", "rmdir", "removedirs", "rename", "replace", "kill"}
OS_FORBIDDEN_PREFIXES = ("exec", "spawn", "fork")
WRITE_METHODS = {"write_text", "write_bytes", "unlink", "rmdir", "rename", "replace", "touch", "mkdir", "symlink_to"}


class PolicyError(Exception):
    """A guard failed; the editor turns it into EditRefused naming the operation."""


def check_path(rel: str, root: Path, *, new_test: bool = False) -> PurePosixPath:
    """The repo-relative path if it may be edited: under strategies/, or a new tests/strategies/ file."""
    if not rel or "\\" in rel or "\x00" in rel:
        raise PolicyError(f"invalid path {rel!r}")
    path = PurePosixPath(rel)
    if path.is_absolute() or rel.startswith("~"):
        raise PolicyError(f"absolute path {rel!r} is not allowed")
    if ".." in path.parts:
        raise PolicyError(f"path {rel!r} contains '..'")
    area = NEW_TESTS if new_test else EDITABLE
    if path.parts[: len(PurePosixPath(area).parts)] != PurePosixPath(area).parts or path.suffix != ".py":
        raise PolicyError(f"path {rel!r} is outside {area}/ (only .py files there may be {_verb(new_test)})")
    # A symlink anywhere on the way could point out of the tree: compare the resolved paths.
    real_root = root.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(real_root / area):
        raise PolicyError(f"path {rel!r} resolves outside {area}/ (symlink)")
    if (root / path).is_symlink():
        raise PolicyError(f"path {rel!r} is a symlink")
    return path


def _verb(new_test: bool) -> str:
    return "added" if new_test else "edited"


def check_code(source: str, filename: str) -> ast.Module:
    """Parse ``source`` and refuse forbidden imports and calls; returns the tree."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise PolicyError(f"{filename} would not parse: {exc.msg} (line {exc.lineno})") from None
    strategy_code = filename.startswith(f"{EDITABLE}/")
    for node in ast.walk(tree):
        problem = _forbidden(node) or (_off_allow_list(node) if strategy_code else None)
        if problem:
            raise PolicyError(f"{filename} line {getattr(node, 'lineno', '?')}: {problem}")
    return tree


def _forbidden(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        bad = [a.name for a in node.names if _bad_module(a.name)]
        return f"forbidden import {bad[0]!r}" if bad else None
    if isinstance(node, ast.ImportFrom):
        if node.module and _bad_module(node.module):
            return f"forbidden import {node.module!r}"
        if node.module == "os" and any(_bad_os(a.name) for a in node.names):
            return "forbidden import from 'os'"
        return None
    if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
        return f"forbidden name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return _forbidden_attribute(node)
    if isinstance(node, ast.Call):
        return _forbidden_call(node)
    return None


def _off_allow_list(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        names = [("." * node.level) + (node.module or "")]
    else:
        return None
    for name in names:
        if name not in STRATEGY_IMPORTS and name.split(".")[0] not in {"numpy", "pandas", "strategies"}:
            allowed = ", ".join(sorted(STRATEGY_IMPORTS))
            return f"import of {name!r} is not allowed in strategy code (allowed: {allowed})"
    return None


def _bad_module(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN_MODULES


def _bad_os(name: str) -> bool:
    return name in OS_FORBIDDEN or name.startswith(OS_FORBIDDEN_PREFIXES)


def _forbidden_attribute(node: ast.Attribute) -> str | None:
    if node.attr in FORBIDDEN_NAMES:
        return f"forbidden attribute {node.attr!r}"
    if isinstance(node.value, ast.Name) and node.value.id == "os" and _bad_os(node.attr):
        return f"forbidden call os.{node.attr}"
    return None


def _forbidden_call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
        return f"forbidden call {func.id}()"
    if isinstance(func, ast.Attribute) and func.attr in WRITE_METHODS:
        return f"forbidden call .{func.attr}() (writes to the file system)"
    is_open = (
        isinstance(func, ast.Name) and func.id == "open" or isinstance(func, ast.Attribute) and func.attr == "open"
    )
    if is_open and _opens_for_writing(node, 0 if isinstance(func, ast.Attribute) else 1):
        return "open() for writing is forbidden"
    return None


def _opens_for_writing(node: ast.Call, mode_index: int) -> bool:
    mode: ast.expr | None = node.args[mode_index] if len(node.args) > mode_index else None
    for kw in node.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return False
    # A mode that is not a literal cannot be proven read-only.
    if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
        return True
    return any(c in mode.value for c in "wax+")


def build_manifest(root: Path) -> dict[str, str]:
    """SHA-256 of every protected file (tests, guardian, bench, sorte, commander, sandbox, knowledge)."""
    manifest: dict[str, str] = {}
    for top in PROTECTED:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(root).parts) and path.suffix != ".pyc":
                manifest[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def check_manifest(root: Path, before: dict[str, str], allowed_new: AbstractSet[str] = frozenset()) -> None:
    """Raise PolicyError if a protected file changed, vanished or appeared (except allowed new tests)."""
    after = build_manifest(root)
    changed = sorted(p for p, h in before.items() if after.get(p) != h)
    added = sorted(p for p in after.keys() - before.keys() if p not in allowed_new)
    if changed or added:
        raise PolicyError(f"protected files changed: {', '.join((changed + added)[:5])}")
