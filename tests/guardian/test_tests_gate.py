from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from guardian import LocalResult, parse_junit, run_tests_gate, subprocess_runner
from guardian.harness import BEGIN, END, NONCE_ENV
from sandbox.local_backend import interpreter_under_tmp


def _project(root: Path, body: str) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_strategy.py").write_text(body)
    return root


def test_passing_candidate(tmp_path: Path) -> None:
    wt = _project(tmp_path, "def test_ok():\n    assert 1 + 1 == 2\n\ndef test_ok2():\n    pass\n")
    result = run_tests_gate(subprocess_runner, wt, limits={"timeout_s": 120})
    assert result.status == "pass", result
    assert result.details["passed"] == 2 and result.details["failures"] == 0


def test_failing_candidate_names_test_and_message(tmp_path: Path) -> None:
    wt = _project(
        tmp_path,
        "def test_ok():\n    pass\n\ndef test_stop_loss():\n    assert 0.03 == 0.02, 'stop loss drifted'\n",
    )
    result = run_tests_gate(subprocess_runner, wt, limits={"timeout_s": 120})
    assert result.status == "fail"
    assert result.details["failures"] == 1 and result.details["passed"] == 1
    (finding,) = result.findings
    assert "test_stop_loss" in finding.message and "stop loss drifted" in finding.message


def test_no_report_is_error(tmp_path: Path) -> None:
    result = run_tests_gate(lambda cmd, wt, limits: subprocess_runner(["true"], wt, limits), tmp_path)
    assert result.status == "error"


def test_timeout(tmp_path: Path) -> None:
    wt = _project(tmp_path, "import time\n\ndef test_slow():\n    time.sleep(30)\n")
    result = run_tests_gate(subprocess_runner, wt, limits={"timeout_s": 3})
    assert result.status == "timeout"


def test_parse_junit_collection_error() -> None:
    xml = (
        '<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="1">'
        '<testcase classname="" name="tests.test_x"><error message="collection failure">'
        "ImportError: boom</error></testcase></testsuite></testsuites>"
    )
    result = parse_junit(xml, exit_code=2)
    assert result.status == "fail" and "collection failure" in result.findings[0].message


def test_a_strategy_that_never_answers_is_a_timeout_not_a_wrong_result() -> None:
    xml = (
        '<testsuites><testsuite name="pytest" errors="0" failures="2" skipped="0" tests="3">'
        '<testcase classname="tests.strategies.test_contract" name="test_a"><failure message="'
        'sorte.runtime.strategy_host.StrategyFault: the strategy worker did not answer within 30s">x</failure>'
        '</testcase><testcase classname="tests.strategies.test_contract" name="test_b"><failure message="'
        "StrategyError: strategy 'breakout' failed to load: the strategy worker is not running\">x</failure>"
        '</testcase><testcase classname="t" name="test_c"/></testsuite></testsuites>'
    )
    result = parse_junit(xml, exit_code=1)
    assert result.status == "timeout" and "did not answer in time" in result.summary
    assert len(result.findings) == 2


def test_limits_may_be_an_object(tmp_path: Path) -> None:
    wt = _project(tmp_path, "import os\n\ndef test_env():\n    assert os.environ['GUARDIAN_X'] == '1'\n")
    limits = SimpleNamespace(timeout_s=120, env={"GUARDIAN_X": "1"})
    assert run_tests_gate(subprocess_runner, wt, limits=limits).status == "pass"


@pytest.mark.skipif(
    interpreter_under_tmp(),
    reason="interpreter under /tmp: the local sandbox has no private /tmp there",
)
def test_through_the_local_sandbox(tmp_path: Path) -> None:
    from sandbox import get_backend

    wt = _project(tmp_path, "def test_stop_loss():\n    assert 0.03 == 0.02, 'stop loss drifted'\n")
    result = run_tests_gate(get_backend("local").run, wt, limits={"timeout_s": 120})
    assert result.status == "fail"
    assert "stop loss drifted" in result.findings[0].message


# --- the protected suite and the candidate's own tests, apart -----------------------------------

PROTECTED = "tests/strategies"
ADDED = "tests/strategies/test_added.py"


def _junit(tests: int, failures: int = 0) -> str:
    cases = "".join(
        f'<testcase classname="t" name="case{i}">'
        + ('<failure message="boom">x</failure>' if i < failures else "")
        + "</testcase>"
        for i in range(tests)
    )
    suite = f'<testsuite tests="{tests}" failures="{failures}" errors="0" skipped="0">{cases}</testsuite>'
    return f"<testsuites>{suite}</testsuites>"


def _scripted(reports: dict[str, str | None], seen: list[tuple[list[str], Path]] | None = None):
    """A runner answering each pytest command with a canned JUnit report, keyed by its last argument."""

    def runner(command: list[str], worktree: Path, limits: dict) -> LocalResult:
        if seen is not None:
            seen.append((command, worktree))
        report = reports[command[-1]]
        code = 1 if report and 'failures="0"' not in report else (0 if report else 2)
        if report is not None and "guardian.harness" in command:  # the protected run: its report on stdout
            return LocalResult(code, _framed(report, limits["env"][NONCE_ENV]), "")
        outputs = {} if report is None else {"junit.xml": report.encode()}
        return LocalResult(code, "", "crashed" if report is None else "", outputs=outputs)

    return runner


def _framed(report: str, nonce: str) -> str:
    return f"{BEGIN} {nonce}\n{report}\n{END} {nonce}\n"


def _gate(reports: dict[str, str | None], seen=None):
    return run_tests_gate(
        _scripted(reports, seen),
        Path("/protected"),
        paths=[PROTECTED],
        candidate_tree=Path("/candidate"),
        candidate_tests=[ADDED],
    )


def test_candidate_tests_run_apart_on_their_own_tree() -> None:
    seen: list[tuple[list[str], Path]] = []
    result = _gate({PROTECTED: _junit(5), ADDED: _junit(2)}, seen)
    assert result.status == "pass", result.summary
    assert sorted((cmd[-1], str(wt)) for cmd, wt in seen) == [(PROTECTED, "/protected"), (ADDED, "/candidate")]
    assert result.details["protected"]["passed"] == 5 and result.details["candidate"]["passed"] == 2
    assert result.details["passed"] == 5, "the candidate's passes never count"
    assert "protected suite: 5 passed" in result.summary and "candidate's tests: 2 passed" in result.summary


def test_candidate_failures_fail_the_gate() -> None:
    result = _gate({PROTECTED: _junit(5), ADDED: _junit(2, failures=1)})
    assert result.status == "fail"
    (finding,) = result.findings
    assert finding.message.startswith("[candidate's tests]")


def test_candidate_passes_do_not_hide_a_protected_failure() -> None:
    result = _gate({PROTECTED: _junit(5, failures=2), ADDED: _junit(50)})
    assert result.status == "fail" and len(result.findings) == 2
    assert result.details["failures"] == 2


@pytest.mark.parametrize("missing", [PROTECTED, ADDED])
def test_a_missing_report_from_either_run_is_an_error(missing: str) -> None:
    reports: dict[str, str | None] = {PROTECTED: _junit(3), ADDED: _junit(1)}
    reports[missing] = None
    assert _gate(reports).status == "error"


@pytest.mark.parametrize("report", ["<testsuites><testsuite", '<testsuite tests="x" failures="0"/>', "A" * 20])
def test_an_unreadable_candidate_report_is_an_error(report: str) -> None:
    assert _gate({PROTECTED: _junit(3), ADDED: report}).status == "error"


def test_a_timed_out_candidate_run_fails() -> None:
    def runner(command: list[str], worktree: Path, limits: dict) -> LocalResult:
        if command[-1] == ADDED:
            return LocalResult(-9, "", "", timed_out=True)
        return LocalResult(0, _framed(_junit(3), limits["env"][NONCE_ENV]), "")

    result = run_tests_gate(runner, Path("/p"), paths=[PROTECTED], candidate_tree=Path("/c"), candidate_tests=[ADDED])
    assert result.status == "timeout"


@pytest.mark.slow
def test_a_candidate_test_patching_pytest_cannot_reach_the_protected_run(tmp_path: Path) -> None:
    """The candidate's test rewrites pytest's report machinery in its own process: the
    protected suite, in another process and tree, still reports its failure."""
    protected = _project(tmp_path / "protected", "def test_contract():\n    assert False, 'contract broken'\n")
    candidate = _project(tmp_path / "candidate", "def test_contract():\n    assert False, 'contract broken'\n")
    (candidate / "tests" / "test_added.py").write_text(
        "import _pytest.reports\n\n"
        "_pytest.reports.TestReport.outcome = property(lambda self: 'passed', lambda self, v: None)\n\n\n"
        "def test_all_green():\n    pass\n"
    )
    result = run_tests_gate(
        subprocess_runner,
        protected,
        paths=["tests"],
        limits={"timeout_s": 120},
        candidate_tree=candidate,
        candidate_tests=["tests/test_added.py"],
    )
    assert result.status == "fail", result.summary
    assert any("contract broken" in f.message for f in result.findings if not f.message.startswith("[candidate"))


# --- the protected run's harness -----------------------------------------------------------------


def test_the_report_is_read_only_from_its_own_frame() -> None:
    from guardian.gates.tests_gate import harness_report

    block = _framed(_junit(2), "n1")
    assert harness_report(f"noise\n{block}more noise\n", "n1") == _junit(2).encode()
    assert harness_report(block, "n2") is None, "another nonce is no report"
    assert harness_report(block + _framed(_junit(9), "n1"), "n1") is None, "two reports are no report"
    assert harness_report(block.replace(END, "=== end"), "n1") is None
    assert harness_report("", "n1") is None


def test_the_harness_process_is_non_dumpable_and_keeps_its_stdout(tmp_path: Path) -> None:
    """A protected test that prints a forged passing report on fd 1 and then fails: the gate
    sees the failure; the process that writes the report cannot be attached to."""
    forged = _framed(_junit(1), "0" * 32)
    wt = _project(
        tmp_path,
        "import ctypes, os, sys\n\n"
        "def test_dumpable():\n"
        "    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0\n\n"
        "def test_nonce_is_gone():\n"
        "    assert 'SORTE_HARNESS_NONCE' not in os.environ\n\n"
        "def test_forges():\n"
        f"    os.write(1, {forged!r}.encode())\n"
        f"    sys.__stdout__.write({forged!r}); sys.__stdout__.flush()\n"
        "    assert False, 'the real failure'\n",
    )
    result = run_tests_gate(subprocess_runner, wt, limits={"timeout_s": 120})
    assert result.status == "fail", result.summary
    assert result.details["passed"] == 2 and result.details["failures"] == 1
    assert "the real failure" in result.findings[0].message


def test_a_protected_test_may_not_import_a_strategy_in_process(tmp_path: Path) -> None:
    wt = _project(
        tmp_path,
        "import importlib.util\n\n"
        "def test_in_process():\n"
        "    spec = importlib.util.spec_from_file_location('evil', 'strategies/evil.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n",
    )
    (wt / "strategies").mkdir()
    (wt / "strategies" / "evil.py").write_text("X = 1\n")
    result = run_tests_gate(subprocess_runner, wt, limits={"timeout_s": 120})
    assert result.status == "fail", result.summary
    assert "may not run in the harness process" in result.findings[0].message


def test_the_harness_refuses_to_run_without_its_nonce(tmp_path: Path) -> None:
    import subprocess
    import sys

    wt = _project(tmp_path, "def test_ok():\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "guardian.harness", "tests"],
        cwd=wt,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "SORTE_HARNESS_NONCE" in proc.stderr + proc.stdout
