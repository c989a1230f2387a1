"""Integrity gate: the candidate changed nothing but what an agent may change.

A candidate, compared with its merge base, may only modify existing ``strategies/*.py`` files
(directly in ``strategies/``) and add ``strategies/*.py`` and ``tests/strategies/test_*.py``
files, as plain (non-executable) files of at most ``max_bytes``. Everything else fails with
the path named: any other file added, modified or deleted (configuration, ``.env``, top-level
modules, ``conftest.py``, pytest plugins and settings, dotfiles, ``.github/``), a deleted
strategy, a symlink anywhere, a mode change, a submodule, a file in a subfolder of
``strategies/``. Modes and types come from git (:mod:`guardian.changes`), not from any tree
the candidate's files were written to.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from guardian.changes import EXECUTABLE, GITLINK, REGULAR, SYMLINK, Change, is_new_test, is_strategy
from guardian.verdict import Finding, GateResult

GATE = "integrity"
#: Mirrors guardian.workspace.MAX_FILE_BYTES: larger files are not laid over the baseline.
MAX_FILE_BYTES = 1 << 20
ALLOWED = "only strategies/*.py may be changed or added, and tests/strategies/test_*.py added"

#: Why some files are worth naming: they change how everything else runs.
_KNOWN: dict[str, str] = {
    "conftest.py": "a conftest.py changes how every test runs",
    "pytest.ini": "pytest settings change how every test runs",
    "setup.cfg": "tool settings change how tests and scanners run",
    "pyproject.toml": "project settings change how tests and scanners run",
    "tox.ini": "tool settings change how tests run",
    "sitecustomize.py": "sitecustomize runs in every interpreter",
    "usercustomize.py": "usercustomize runs in every interpreter",
    "sorte.yaml": "the configuration sets trading, approval and risk",
    "sorte.yml": "the configuration sets trading, approval and risk",
    ".env": "the environment file holds settings and secrets",
}


def run_integrity_gate(changes: Sequence[Change], *, max_bytes: int = MAX_FILE_BYTES) -> GateResult:
    """One critical finding per path the candidate may not change (see the module doc)."""
    t0 = time.perf_counter()
    findings = [f for change in changes for f in check_change(change, max_bytes)]
    if not findings:
        return GateResult(
            gate=GATE,
            status="pass",
            summary=f"{len(changes)} changed files, all allowed",
            duration_s=time.perf_counter() - t0,
            details={"changed": len(changes)},
        )
    files = list(dict.fromkeys(f.file for f in findings))
    names = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return GateResult(
        gate=GATE,
        status="fail",
        summary=f"{len(files)} of {len(changes)} changed files not allowed: {names}",
        duration_s=time.perf_counter() - t0,
        findings=findings,
        details={"changed": len(changes), "refused": len(files)},
    )


def check_change(change: Change, max_bytes: int = MAX_FILE_BYTES) -> list[Finding]:
    """The findings for one changed path (none when the change is allowed)."""
    return [_finding(change.path, rule, message) for rule, message in _problems(change, max_bytes)]


def _problems(c: Change, max_bytes: int) -> list[tuple[str, str]]:
    if GITLINK in (c.old_mode, c.new_mode):
        return [("submodule", f"submodule (gitlink) {_verb(c)}: {ALLOWED}")]
    if c.new_mode == SYMLINK:
        return [("symlink", f"symlink {_verb(c)}: no symlink may be committed, not even in strategies/")]
    if c.status == "D":
        if is_strategy(c.raw):
            return [("strategy-deleted", "strategy deleted: strategies may be changed, never removed")]
        return [("protected-file-deleted", f"file deleted: {ALLOWED}")]
    allowed = is_strategy(c.raw) or (c.status == "A" and is_new_test(c.raw))
    if c.old_mode == SYMLINK or not allowed:
        rule = "protected-file-added" if c.status == "A" else "protected-file-modified"
        return [(rule, f"{_what(c)}: {_why(c)}")]
    problems: list[tuple[str, str]] = []
    if c.status != "A" and c.old_mode != c.new_mode:
        problems.append(("mode-changed", f"mode changed from {c.old_mode} to {c.new_mode}: modes may not change"))
    elif c.new_mode != REGULAR:
        problems.append(("mode-changed", f"added with mode {c.new_mode}: only plain files ({REGULAR}) may be added"))
    if c.size is None or c.size > max_bytes:
        size = "of unknown size" if c.size is None else f"{c.size} bytes"
        problems.append(("file-too-large", f"file {size}: at most {max_bytes} bytes"))
    return problems


def _verb(c: Change) -> str:
    return {"A": "added", "D": "removed"}.get(c.status, "changed")


def _what(c: Change) -> str:
    if c.old_mode == SYMLINK:
        return "symlink replaced by a file"
    if c.status == "A":
        return "file added"
    if c.new_mode == EXECUTABLE and c.old_mode != EXECUTABLE:
        return "file modified and made executable"
    return "file modified"


def _why(c: Change) -> str:
    """What rule the path breaks, in words a reviewer can act on."""
    path = c.path
    name = path.rsplit("/", 1)[-1]
    if name in _KNOWN or name.endswith(".pth"):
        reason = _KNOWN.get(name, "a .pth file runs code in every interpreter")
        return f"{reason}; {ALLOWED}"
    if path.startswith("tests/strategies/"):
        if c.status != "A":
            return "existing tests can never change"
        return "only new test_*.py files directly in tests/strategies/ may be added"
    if path.startswith("strategies/"):
        if path.count("/") > 1:
            return "strategies live directly in strategies/, never in a subfolder"
        if not path.endswith(".py"):
            return "only .py modules may be added to strategies/"
        return "a strategy's file name must be a Python module name (letters, digits, _)"
    return ALLOWED


def _finding(path: str, rule: str, message: str) -> Finding:
    return Finding(gate=GATE, rule=rule, file=path, message=message, severity="critical")
