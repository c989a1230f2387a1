"""The protected suite's harness: a pytest plugin for the run whose verdict counts.

The tests gate runs the baseline's protected suite with ``-p guardian.harness``. The
candidate's strategies are only inputs of that run: the suite reaches them through a
:class:`~sorte.runtime.strategy_host.StrategyHost`, so their code runs in a worker process,
never in this one. That worker has the same user id as pytest inside the sandbox, so the
evidence is kept out of its reach by the operating system, not by Python checks:

* this process is made non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``) before any worker
  starts: a process of the same user can no longer attach to it, read its memory, its
  environment or its open files under ``/proc``;
* the report leaves through this process's own standard output, which it keeps to itself
  (everything pytest and the tests print goes to standard error instead) and which no
  worker inherits; the ``{out}`` folder, which any process in the sandbox may write, is
  not used;
* the report is framed with a nonce the guardian passes in the environment and this
  plugin removes at once, so text a worker gets printed elsewhere cannot pass for it;
* an audit hook refuses to execute code from the tree's ``strategies/`` folder in this
  process, so a protected test that would import a candidate in-process errors instead.

The report is JUnit-shaped XML that ``guardian.gates.tests_gate.parse_junit`` reads.
"""

from __future__ import annotations

import ctypes
import os
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - this builds XML, it parses none
from pathlib import Path
from typing import Any

import pytest

NONCE_ENV = "SORTE_HARNESS_NONCE"
BEGIN = "=== sorte-harness-report"
END = "=== sorte-harness-end"
MAX_MESSAGE = 2000
_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3

_nonce = ""
_channel = -1
_cases: dict[str, dict[str, Any]] = {}
_STRATEGIES = (Path.cwd() / "strategies").resolve()


class CandidateCodeInHarness(RuntimeError):
    """A protected test tried to run a candidate's code in the harness process."""


def non_dumpable() -> bool:
    """Make this process non-dumpable; True when the kernel says it is."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    return libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


def _refuse_candidate_code(event: str, args: tuple[Any, ...]) -> None:
    if event != "exec" or not args:
        return
    filename = getattr(args[0], "co_filename", "")
    if filename and Path(filename).resolve().parent == _STRATEGIES:
        raise CandidateCodeInHarness(
            f"{filename}: candidate code may not run in the harness process; reach strategies through a StrategyHost"
        )


def _install() -> None:
    global _nonce, _channel
    if _channel >= 0:
        return
    _nonce = os.environ.pop(NONCE_ENV, "")
    if not _nonce:
        raise pytest.UsageError(f"guardian.harness needs {NONCE_ENV} (the tests gate sets it)")
    if not non_dumpable():
        raise pytest.UsageError("guardian.harness: cannot make the process non-dumpable")
    sys.stdout.flush()
    _channel = os.dup(1)  # not inheritable: no child gets it
    os.dup2(2, 1)  # what anyone prints on fd 1 from now on goes to stderr
    sys.addaudithook(_refuse_candidate_code)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Any:
    # Outside pytest's own output capture, which starts in its wrapper of this hook: the
    # channel must be the real standard output, and no conftest may run before the hook.
    _install()
    return (yield)


def _case(nodeid: str, location: tuple[str, int | None, str] | None) -> dict[str, Any]:
    case = _cases.get(nodeid)
    if case is None:
        path, line = (location[0], location[1]) if location else ("", None)
        classname, _, name = nodeid.rpartition("::")
        module, _, classes = classname.partition("::")
        dotted = ".".join(p for p in (module.removesuffix(".py").replace("/", "."), classes.replace("::", ".")) if p)
        case = {"classname": dotted, "name": name or nodeid}
        case.update({"file": path, "line": line, "outcome": "passed", "message": "", "text": ""})
        _cases[nodeid] = case
    return case


_WORSE = {"passed": 0, "skipped": 1, "failure": 2, "error": 3}


def _mark(case: dict[str, Any], outcome: str, report: pytest.TestReport | pytest.CollectReport, default: str) -> None:
    if _WORSE[outcome] <= _WORSE[case["outcome"]]:
        return
    text = report.longreprtext or default
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    lines = text.strip().splitlines()
    case["outcome"], case["text"] = outcome, text[-MAX_MESSAGE:]
    case["message"] = str(crash or (lines[-1] if lines else default))[:MAX_MESSAGE]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    case = _case(report.nodeid, report.location)
    if report.failed:
        _mark(case, "failure" if report.when == "call" else "error", report, f"failed at {report.when}")
    elif report.skipped:
        _mark(case, "skipped", report, "skipped")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _mark(_case(report.nodeid or "collection", None), "error", report, "collection failed")


def report_xml(cases: list[dict[str, Any]]) -> str:
    counts = {kind: sum(c["outcome"] == kind for c in cases) for kind in ("failure", "error", "skipped")}
    suite = ET.Element(
        "testsuite",
        name="protected",
        tests=str(len(cases)),
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
    )
    for c in cases:
        attrs = {"classname": c["classname"], "name": c["name"], "file": c["file"]}
        if c["line"] is not None:
            attrs["line"] = str(c["line"])
        el = ET.SubElement(suite, "testcase", attrs)
        if c["outcome"] != "passed":
            ET.SubElement(el, c["outcome"], message=c["message"]).text = c["text"]
    return ET.tostring(suite, encoding="unicode")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    block = f"{BEGIN} {_nonce}\n{report_xml(list(_cases.values()))}\n{END} {_nonce}\n".encode()
    view = memoryview(block)
    while view:
        view = view[os.write(_channel, view) :]
