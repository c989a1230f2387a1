"""Tests gate: the protected suite on the candidate's strategies, and the candidate's own new tests apart.

The protected suite (``guardian.test_paths``) comes from the trusted baseline tree, with the
candidate's strategies laid over it as inputs (see ``guardian.workspace``). It runs under
``guardian.harness``: the strategies' code runs in a worker process, and the report comes
back on the pytest process's own standard output, framed with a nonce that only it knows,
so nothing the candidate's code does in the sandbox can write or alter it. The tests the
candidate added run in a separate sandboxed run over their own tree, so nothing they do
(patching pytest, forging their report) reaches the protected run; their failures fail the
gate, their passes count for nothing. A missing or unreadable report from either run is an
error, never a pass.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
import xml.etree.ElementTree as ET  # noqa: S405 - the report is written by pytest in the sandbox
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from guardian.gates import OUT, Runner, read_output
from guardian.harness import BEGIN, END, NONCE_ENV
from guardian.verdict import Finding, GateResult, GateStatus
from sorte.runtime.strategy_host import NO_ANSWER

GATE = "tests"
REPORT = "junit.xml"
MAX_MESSAGE = 500
MAX_REPORT_BYTES = 16 << 20
#: How two runs combine: the worse status wins (a failure anywhere fails the gate).
_RANK: dict[str, int] = {"fail": 0, "timeout": 1, "error": 2, "inconclusive": 3, "skipped": 4, "pass": 5}
CANDIDATE = "candidate's tests"


def tests_command(
    paths: list[str] | None = None, python: str | None = None, extra: list[str] | None = None, harness: bool = False
) -> list[str]:
    """pytest over ``paths``; with ``harness`` under ``guardian.harness`` (report on stdout),
    otherwise with a JUnit report under ``{out}``."""
    report = ["-p", "guardian.harness"] if harness else [f"--junitxml={OUT}/{REPORT}"]
    return [
        python or sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:langsmith_plugin",  # LangChain's plugin costs ~1 s of imports and no strategy test needs it
        *report,
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
    candidate_tree: Path | None = None,
    candidate_tests: Sequence[str] = (),
) -> GateResult:
    """Run pytest over ``paths`` (default: the whole ``tests`` folder) of ``worktree``; with
    ``candidate_tests``, run those files of ``candidate_tree`` too, apart, and combine."""
    limits = limits if limits is not None else {}
    protected_cmd = tests_command(paths, python, extra_args, harness=True)
    if not candidate_tests:
        return run_protected(runner, worktree, protected_cmd, limits)
    t0 = time.perf_counter()
    candidate_cmd = tests_command(list(candidate_tests), python, extra_args)
    with ThreadPoolExecutor(max_workers=2) as pool:
        protected_f = pool.submit(run_protected, runner, worktree, protected_cmd, limits)
        candidate_f = pool.submit(run_pytest, runner, candidate_tree or worktree, candidate_cmd, limits)
        protected, candidate = protected_f.result(), candidate_f.result()
    return combine(protected, candidate, time.perf_counter() - t0)


def _with_env(limits: Any, extra: dict[str, str]) -> Any:
    """``limits`` (a dict, a pydantic model or any object) with ``extra`` added to its ``env``."""
    if hasattr(limits, "model_copy"):
        return limits.model_copy(update={"env": {**limits.env, **extra}})
    limits = dict(limits) if isinstance(limits, Mapping) else dict(vars(limits)) if limits is not None else {}
    limits["env"] = {**(limits.get("env") or {}), **extra}
    return limits


def run_protected(runner: Runner, worktree: Path, command: list[str], limits: Any) -> GateResult:
    """The protected suite under ``guardian.harness``, judged from the report on its stdout."""
    nonce = secrets.token_hex(16)
    return run_pytest(runner, worktree, command, _with_env(limits, {NONCE_ENV: nonce}), nonce=nonce)


def harness_report(stdout: str, nonce: str) -> bytes | None:
    """The one report framed with ``nonce`` in ``stdout``; None when there is none, or more than one."""
    found = re.findall(f"^{re.escape(BEGIN)} {nonce}\n(.*?)\n{re.escape(END)} {nonce}$", stdout, re.M | re.S)
    return found[0].encode() if len(found) == 1 else None


def run_pytest(runner: Runner, worktree: Path, command: list[str], limits: Any, nonce: str = "") -> GateResult:
    """One sandboxed pytest run, judged from its report: the harness's on stdout (``nonce``),
    or the JUnit file under ``{out}``."""
    t0 = time.perf_counter()
    result = runner(command, worktree, limits)
    elapsed = time.perf_counter() - t0
    if result.timed_out:
        return GateResult(gate=GATE, status="timeout", summary="pytest timed out", duration_s=elapsed)
    if result.oom_killed:
        return GateResult(gate=GATE, status="fail", summary="pytest was killed: out of memory", duration_s=elapsed)
    report = harness_report(result.stdout or "", nonce) if nonce else read_output(result, REPORT)
    if report is None or len(report) > MAX_REPORT_BYTES:
        tail = (result.stderr or result.stdout or "").strip()[-MAX_MESSAGE:]
        what = "no test report" if report is None else f"test report over {MAX_REPORT_BYTES} bytes"
        return GateResult(
            gate=GATE,
            status="error",
            summary=f"{what} (exit code {result.exit_code})",
            duration_s=elapsed,
            findings=[Finding(gate=GATE, rule="no-report", message=tail or "pytest wrote no report", severity="high")],
        )
    return parse_junit(report, result.exit_code, elapsed)


def combine(protected: GateResult, candidate: GateResult, duration_s: float) -> GateResult:
    """The gate's result from the protected run and the candidate's own run: the worse status
    wins, the counts are the protected suite's, and the candidate's run only adds findings."""
    status: GateStatus = min((protected.status, candidate.status), key=lambda s: _RANK.get(s, 0))
    marked = [
        f.model_copy(update={"message": f"[{CANDIDATE}] {f.message}"[: MAX_MESSAGE + 40]}) for f in candidate.findings
    ]
    return GateResult(
        gate=GATE,
        status=status,
        summary=f"protected suite: {protected.summary}; {CANDIDATE}: {candidate.summary}",
        duration_s=duration_s,
        findings=protected.findings + marked,
        details={**protected.details, "protected": protected.details, "candidate": candidate.details},
    )


def parse_junit(report: bytes | str, exit_code: int = 0, duration_s: float = 0.0) -> GateResult:
    """A GateResult from a JUnit XML report: counts and one finding per failure or error."""
    try:
        root = ET.fromstring(report)  # noqa: S314
    except ET.ParseError as exc:
        return GateResult(gate=GATE, status="error", summary=f"unreadable test report: {exc}", duration_s=duration_s)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        for s in suites:
            for key in counts:
                counts[key] += int(s.get(key, 0) or 0)
    except ValueError as exc:
        return GateResult(gate=GATE, status="error", summary=f"unreadable test report: {exc}", duration_s=duration_s)
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
                    line=int(case.get("line") or 0) + 1 if _digits(case.get("line")) else None,
                    message=f"{name}: {message[:MAX_MESSAGE]}",
                    severity="high",
                )
            )
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["passed"] = passed
    summary = f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped"
    if any(NO_ANSWER in f.message for f in findings):
        status = "timeout"  # a strategy never answered: an endless loop, not a wrong result
        summary += "; a strategy did not answer in time"
    elif counts["failures"] or counts["errors"] or findings:
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


def _digits(text: str | None) -> bool:
    return text is not None and text.isascii() and text.isdigit()
