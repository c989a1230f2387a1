"""Integrity gate: no protected file (tests, guardian, bench, sorte, ...) may change.

Compares the candidate tree's protected-file hash manifest with the baseline's, using the
editing policy's ``build_manifest`` / ``check_manifest``. New files are allowed only where
``allowed_new`` names them (for example new tests under ``tests/strategies/``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from guardian.verdict import Finding, GateResult
from sorte.editing.policy import PolicyError, build_manifest, check_manifest

GATE = "integrity"


def run_integrity_gate(
    candidate: Path,
    baseline: Path | Mapping[str, str],
    allowed_new: Iterable[str] = (),
) -> GateResult:
    """``baseline`` is the baseline tree or its manifest (``build_manifest`` output)."""
    t0 = time.perf_counter()
    before = dict(baseline) if isinstance(baseline, Mapping) else build_manifest(Path(baseline))
    allowed = frozenset(allowed_new)
    try:
        check_manifest(Path(candidate), before, allowed)
    except PolicyError:
        pass
    else:
        return GateResult(
            gate=GATE,
            status="pass",
            summary=f"{len(before)} protected files unchanged",
            duration_s=time.perf_counter() - t0,
        )
    after = build_manifest(Path(candidate))
    findings: list[Finding] = []
    for path in sorted(p for p, h in before.items() if after.get(p) != h):
        what = "deleted" if path not in after else "modified"
        findings.append(_finding(path, f"protected file {what}", "protected-file-" + what))
    for path in sorted(p for p in after.keys() - before.keys() if p not in allowed):
        findings.append(_finding(path, "protected file added", "protected-file-added"))
    names = ", ".join(f.file for f in findings[:5]) + (" …" if len(findings) > 5 else "")
    return GateResult(
        gate=GATE,
        status="fail",
        summary=f"protected files changed: {names}",
        duration_s=time.perf_counter() - t0,
        findings=findings,
    )


def _finding(path: str, message: str, rule: str) -> Finding:
    return Finding(gate=GATE, rule=rule, file=path, message=message, severity="critical")
