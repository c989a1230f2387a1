"""Tests gate: pytest on the candidate, parsed from its JUnit XML report."""

from __future__ import annotations

import sys
import time
import xml.etree.ElementTree as ET  # noqa: S405 - the report is written by pytest in the sandbox
from pathlib import Path
from typing import Any

from guardian.gates import OUT, Runner, read_output
from guardian.verdict import Finding, GateResult

GATE = "tests"
REPORT = "junit.xml"
MAX_MESSAGE = 500


def tests_command(
    paths: list[str] | None = None, python: str | None = None, extra: list[str] | None = None
) -> list[str]:
    return [
        python or sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:langsmith_plugin",  # LangChain's plugin costs ~1 s of imports and no strategy test needs it
        f"--junitxml={OUT}/{REPORT}",
        *(extra or []),
        *(paths or ["tests"]),
    ]


def run_tests_gate(
    runner: Runner,
    worktree: Path,
    *,
    paths: list[str] | None = None,
    extra_args: list[str] | None = None,
    limits: Any = None,
    python: str | None = None,
) -> GateResult:
    """Run pytest over ``paths`` (default: the whole ``tests`` folder) of ``worktree``."""
    t0 = time.perf_counter()
    result = runner(tests_command(paths, python, extra_args), worktree, limits if limits is not None else {})
    elapsed = time.perf_counter() - t0
    if result.timed_out:
        return GateResult(gate=GATE, status="timeout", summary="pytest timed out", duration_s=elapsed)
    if result.oom_killed:
        return GateResult(gate=GATE, status="fail", summary="pytest was killed: out of memory", duration_s=elapsed)
    report = read_output(result, REPORT)
    if report is None:
        tail = (result.stderr or result.stdout or "").strip()[-MAX_MESSAGE:]
        return GateResult(
            gate=GATE,
            status="error",
            summary=f"no test report (exit code {result.exit_code})",
            duration_s=elapsed,
            findings=[Finding(gate=GATE, rule="no-report", message=tail or "pytest wrote no report", severity="high")],
        )
    return parse_junit(report, result.exit_code, elapsed)


def parse_junit(report: bytes | str, exit_code: int = 0, duration_s: float = 0.0) -> GateResult:
    """A GateResult from a JUnit XML report: counts and one finding per failure or error."""
    try:
        root = ET.fromstring(report)  # noqa: S314
    except ET.ParseError as exc:
        return GateResult(gate=GATE, status="error", summary=f"unreadable test report: {exc}", duration_s=duration_s)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for key in counts:
            counts[key] += int(s.get(key, 0) or 0)
    findings: list[Finding] = []
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            el = case.find(kind)
            if el is None:
                continue
            name = ".".join(p for p in (case.get("classname", ""), case.get("name", "")) if p)
            text_lines = (el.text or "").strip().splitlines()
            message = el.get("message") or (text_lines[-1] if text_lines else kind)
            findings.append(
                Finding(
                    gate=GATE,
                    rule=f"test-{kind}",
                    file=case.get("file", "") or "",
                    line=int(case.get("line")) + 1 if (case.get("line") or "").isdigit() else None,
                    message=f"{name}: {message[:MAX_MESSAGE]}",
                    severity="high",
                )
            )
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["passed"] = passed
    summary = f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped"
    if counts["failures"] or counts["errors"] or findings:
        status = "fail"
    elif counts["tests"] == 0 or exit_code not in (0,):
        # exit 5 = no tests collected; anything else without failures is an internal error
        status = "error"
        summary += f" (pytest exit code {exit_code})"
    else:
        status = "pass"
    return GateResult(
        gate=GATE, status=status, summary=summary, duration_s=duration_s, findings=findings, details=counts
    )
