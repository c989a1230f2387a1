from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from guardian import parse_junit, run_tests_gate, subprocess_runner
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
