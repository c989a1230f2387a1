"""Guards the editor enforces in code, not in prompts: which paths may change, and a hash
manifest proving nothing outside the editable area changed. Which code may be written is
``sorte.editing.code_policy``'s (with the lists of ``sorte.editing.allowlist``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Set as AbstractSet
from pathlib import Path, PurePosixPath

EDITABLE = "strategies"
STRATEGY_FILE = re.compile(r"strategies/[A-Za-z_][A-Za-z0-9_]*\.py")
NEW_TEST_FILE = re.compile(r"tests/strategies/test_[A-Za-z0-9_]*\.py")
NEW_TESTS = "tests/strategies"
PROTECTED = ("tests", "guardian", "bench", "sorte", "commander", "sandbox", "knowledge")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}


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
    if new_test and not path.name.startswith("test_"):
        raise PolicyError(f"test file name {path.name!r} must start with 'test_'")
    # The guardian accepts exactly these names (guardian/changes.py): directly in the folder, a module name.
    if not (NEW_TEST_FILE if new_test else STRATEGY_FILE).fullmatch(rel):
        shape = "tests/strategies/test_<name>.py" if new_test else "strategies/<module>.py"
        raise PolicyError(f"path {rel!r} must be {shape} (no subfolder, a Python identifier as the name)")
    return path


def _verb(new_test: bool) -> str:
    return "added" if new_test else "edited"


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
