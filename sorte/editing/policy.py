"""Guards the editor enforces in code, not in prompts: which paths may change, which code may
be written, and a hash manifest proving nothing outside the editable area changed."""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath

EDITABLE = "strategies"
NEW_TESTS = "tests/strategies"
PROTECTED = ("tests", "guardian", "bench", "sorte", "commander", "sandbox", "knowledge")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}

# --- code policy --------------------------------------------------------------------
#
# Design: imports are an allow-list (strategy code may import only the list; new
# tests get that list plus pytest and the project's own packages), and everything that can
# reach the interpreter, the file system, processes or the network is denied by name: the
# dangerous builtins wherever they are referenced (not only called), dunder and private
# attributes, frame introspection, attribute chains that reach sys/os/builtins, numpy and
# pandas file readers and writers, and open() unless provably read-only. A deny-list is never
# complete, which is why the edited code is also only ever imported inside the sandboxed
# validator (sorte.editing.sandboxed), never in the editor's process.

#: Modules strategy code may import (issue 4), plus the ``strategies`` package's own helpers.
STRATEGY_IMPORTS = {
    "numpy",
    "numpy.linalg",
    "numpy.fft",
    "numpy.random",
    "numpy.ma",
    "numpy.typing",
    "pandas",
    "math",
    "statistics",
    "sorte.indicators",
    "__future__",
    "typing",
}
STRATEGY_PACKAGES = ("strategies",)
#: New test files may also import pytest, hypothesis and the project's own packages.
TEST_IMPORTS = STRATEGY_IMPORTS | {"pytest", "hypothesis", "hypothesis.strategies", "dataclasses", "functools"}
TEST_PACKAGES = ("strategies", "sorte", "tests")
#: Never importable, not even from the project's packages' allow-list (kept for tests' sake).
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
    "os",
    "sys",
    "io",
    "pickle",
    "marshal",
    "sorte.editing",
    "sorte.agent",
    "sorte.interfaces",
    "sandbox",
    "guardian",
    "commander",
}
#: Builtins that evaluate code or reach the interpreter's namespaces: refused wherever they
#: appear (``f = eval`` too), not only when called.
FORBIDDEN_BUILTINS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "breakpoint",
    "globals",
    "locals",
    "vars",
    "input",
    "help",
    "memoryview",
    "__builtins__",
    "__loader__",
    "__spec__",
}
#: Builtins allowed only as a direct call whose arguments can be checked.
CHECKED_BUILTINS = {"getattr", "setattr", "delattr", "hasattr", "open"}
#: Names that are modules giving access to the system (as a name or anywhere in an attribute chain).
SYSTEM_NAMES = {
    "os",
    "sys",
    "builtins",
    "subprocess",
    "socket",
    "shutil",
    "importlib",
    "ctypes",
    "ctypeslib",
    "io",
    "pathlib",
    "tempfile",
    "pickle",
    "marshal",
    "inspect",
    "gc",
    "multiprocessing",
    "urllib",
    "http",
    "requests",
    "modules",
    "system",
    "popen",
    "f2py",
    "distutils",
    "testing",
    "npyio",
    "get_type_hints",
    "ForwardRef",
}
SYSTEM_PREFIXES = ("exec", "spawn", "fork", "posix_spawn", "popen")
#: Dunders harmless to read (a module's or function's name and docstring; super().__init__()).
HARMLESS_DUNDERS = {"__name__", "__doc__", "__qualname__", "__file__", "__all__", "__version__", "__init__"}
FRAME_ATTRS = {
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "ag_code",
    "f_back",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_code",
    "tb_frame",
    "tb_next",
    "func_globals",
}
#: File and network I/O of numpy and pandas (and the file-system methods of pathlib objects).
IO_ATTRS = {
    "save",
    "savez",
    "savez_compressed",
    "savetxt",
    "tofile",
    "dump",
    "memmap",
    "open_memmap",
    "load",
    "loadtxt",
    "genfromtxt",
    "fromfile",
    "fromregex",
    "DataSource",
    "HDFStore",
    "ExcelWriter",
    "ExcelFile",
    "write",
    "writelines",
    "write_text",
    "write_bytes",
    "write_array",
    "unlink",
    "rmdir",
    "rename",
    "replace",
    "touch",
    "mkdir",
    "makedirs",
    "symlink_to",
    "hardlink_to",
    "link_to",
    "chmod",
    "chown",
    "eval",
    "query",
}
IO_PREFIXES = ("read_", "to_", "save", "load", "dump", "write")
#: In-memory conversions that share a denied prefix.
IN_MEMORY = {
    "to_numpy",
    "to_list",
    "to_dict",
    "to_frame",
    "to_records",
    "to_period",
    "to_timestamp",
    "to_datetime",
    "to_timedelta",
    "to_numeric",
    "to_offset",
    "to_pydatetime",
    "to_flat_index",
    "to_series",
    "to_device",
}
READ_MODE = re.compile(r"[rbtU]{1,3}")
MODE_LIKE = re.compile(r"[rwxabtU+]{1,4}")
#: A str.format replacement field: "{0.__class__}" reads an attribute without any AST attribute node.
FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")


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
    """Parse ``source`` and refuse forbidden imports, names, attributes and calls; returns the tree."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise PolicyError(f"{filename} would not parse: {exc.msg} (line {exc.lineno})") from None
    test_code = not filename.startswith(f"{EDITABLE}/")
    # Names and attributes that are the function of a call: those calls' arguments are checked.
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        problem = _forbidden(node, called, test_code)
        if problem:
            raise PolicyError(f"{filename} line {getattr(node, 'lineno', '?')}: {problem}")
    return tree


def _forbidden(node: ast.AST, called: set[int], test_code: bool) -> str | None:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return _forbidden_import(node, test_code)
    if isinstance(node, ast.Name):
        return _forbidden_name(node.id, id(node) in called)
    if isinstance(node, ast.Attribute):
        return _forbidden_attribute(node, id(node) in called)
    if isinstance(node, ast.Call):
        return _forbidden_call(node)
    if isinstance(node, ast.MatchClass):
        bad = [a for a in node.kwd_attrs if _bad_attr(a)]
        return f"forbidden attribute {bad[0]!r} in a class pattern" if bad else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
        return _forbidden_format(node.value)
    if isinstance(node, ast.Global | ast.Nonlocal):
        bad = [n for n in node.names if n in FORBIDDEN_BUILTINS | CHECKED_BUILTINS]
        return f"forbidden name {bad[0]!r}" if bad else None
    return None


def _forbidden_format(text: str) -> str | None:
    for field in FORMAT_FIELD.findall(text):
        name = re.split(r"[!:]", field, maxsplit=1)[0]  # the conversion and format spec read nothing
        for part in re.split(r"[.\[\]]", name)[1:]:
            reason = _bad_attr(part.strip())
            if reason:
                return f"format string reading {part.strip()!r} is forbidden ({reason})"
    return None


def _forbidden_import(node: ast.Import | ast.ImportFrom, test_code: bool) -> str | None:
    allowed, packages = (TEST_IMPORTS, TEST_PACKAGES) if test_code else (STRATEGY_IMPORTS, STRATEGY_PACKAGES)
    where = "in test code" if test_code else "in strategy code"
    if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
        imported: list[str] = []
    else:
        if node.level:
            return f"relative import is not allowed {where}"
        modules = [node.module or ""]
        imported = [a.name for a in node.names]
    for module in modules:
        if _bad_module(module):
            return f"forbidden import {module!r}"
        bad_part = next((p for p in module.split(".")[1:] if _bad_attr(p)), None)
        if bad_part:
            return f"forbidden import {module!r} ({_bad_attr(bad_part)})"
        if module not in allowed and module.split(".")[0] not in packages:
            return f"import of {module!r} is not allowed {where} (allowed: {', '.join(sorted(allowed))})"
    # The project's own functions (read_cascade, load_strategy) are not numpy/pandas I/O.
    own = modules[0].split(".")[0] in packages
    for name in imported:
        reason = "'*' hides what is imported" if name == "*" else _bad_attr(name, io=not own)
        if reason:
            return f"forbidden import of {name!r} from {modules[0]!r} ({reason})"
    return None


def _bad_module(name: str) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in FORBIDDEN_MODULES for i in range(1, len(parts) + 1))


def _forbidden_name(name: str, is_called: bool) -> str | None:
    if name in FORBIDDEN_BUILTINS:
        return f"forbidden name {name!r}"
    if name in CHECKED_BUILTINS and not is_called:
        return f"{name!r} may only be called directly (with arguments that can be checked)"
    if name in SYSTEM_NAMES and name not in {"modules", "system", "testing", "gc", "inspect"}:
        return f"forbidden name {name!r} (reaches the system)"
    if name.startswith("__") and name.endswith("__") and name not in HARMLESS_DUNDERS:
        return f"forbidden name {name!r} (dunder)"
    return None


def _bad_attr(attr: str, io: bool = True) -> str | None:
    """Why reading ``x.<attr>`` is forbidden, or None (``io=False``: file I/O names allowed)."""
    if attr.startswith("__") and attr.endswith("__"):
        return None if attr in HARMLESS_DUNDERS else "dunder attribute"
    if attr.startswith("_"):
        return "private attribute"
    if attr in FRAME_ATTRS:
        return "frame introspection"
    if attr in SYSTEM_NAMES or attr.startswith(SYSTEM_PREFIXES):
        return "reaches the system"
    if io and (attr in IO_ATTRS or (attr.startswith(IO_PREFIXES) and attr not in IN_MEMORY)):
        return "file or network I/O"
    if attr in FORBIDDEN_BUILTINS:
        return "evaluates code"
    return None


def _forbidden_attribute(node: ast.Attribute, is_called: bool) -> str | None:
    if node.attr.startswith("_") and not node.attr.startswith("__") and _is_self(node.value):
        return None  # a class's own private state (self._cache)
    reason = _bad_attr(node.attr)
    if reason:
        return f"forbidden attribute .{node.attr} ({reason})"
    if node.attr == "open" and not is_called:
        return "'.open' may only be called directly (with a mode that can be checked)"
    return None


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"self", "cls"}


def _forbidden_call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in {"getattr", "setattr", "delattr", "hasattr"}:
        name = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return f"{func.id}() with a name that is not a literal is forbidden"
        reason = _bad_attr(name.value)
        return f"{func.id}() of {name.value!r} is forbidden ({reason})" if reason else None
    if isinstance(func, ast.Name) and func.id == "open":
        return "open() for writing is forbidden" if _builtin_open_writes(node) else None
    if isinstance(func, ast.Attribute) and func.attr == "open" and _method_open_writes(node):
        return "open() for writing is forbidden (or its mode cannot be checked)"
    return None


def _literal_str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _builtin_open_writes(node: ast.Call) -> bool:
    """open(path, mode): True unless the mode is absent or a literal read mode."""
    mode: ast.expr | None = node.args[1] if len(node.args) > 1 else None
    for kw in node.keywords:
        if kw.arg == "mode" or kw.arg is None:  # **kwargs could carry a mode
            mode = kw.value
    if any(isinstance(a, ast.Starred) for a in node.args):
        return True
    if mode is None:
        return False
    text = _literal_str(mode)
    # A mode that is not a literal cannot be proven read-only.
    return text is None or not READ_MODE.fullmatch(text)


def _method_open_writes(node: ast.Call) -> bool:
    """x.open(...): Path.open(mode), io/gzip/tarfile.open(path, mode), ZipFile.open(name, mode)...
    The mode may be argument 0 or 1, so both are checked: each must be a literal that is either a
    read mode or clearly not a mode (a path); anything else cannot be proven read-only."""
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return True
    candidates = list(node.args[:2]) + [k.value for k in node.keywords if k.arg == "mode"]
    for arg in candidates:
        if isinstance(arg, ast.Constant) and not isinstance(arg.value, str):
            continue  # buffering and the like
        text = _literal_str(arg)
        if text is None:
            return True
        if MODE_LIKE.fullmatch(text) and not READ_MODE.fullmatch(text):
            return True
    return False


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
