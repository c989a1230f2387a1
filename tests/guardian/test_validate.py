"""The guardian's orchestration (`guardian.validate`) on real git branches of a copy of this project.

These run the gates through the plain subprocess runner (no isolation), so they show the
orchestration; tests/guardian/test_validate_sandboxed.py runs hostile candidates in Docker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_repo import branch, copy_project, patch_function

from guardian.gates import LocalResult, subprocess_runner
from guardian.validate import validate
from guardian.workspace import GuardianError
from sorte.config import GitSettings, GuardianSettings, Settings
from tests.guardian.git_trees import Link, commit

ONE_FUNCTION = (
    "strategies/momentum.py",
    "def lookback(p):\n    return max(p.fast, p.slow) + 1\n",
    "def lookback(p):\n    return max(p.fast, p.slow) + 2\n",
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


def make_settings(repo: Path, data: Path, **guardian: object) -> Settings:
    return Settings(
        data_dir=data,
        git=GitSettings(repo_root=repo),
        guardian=GuardianSettings(**guardian),
        sandbox="local",
    )


class Counting:
    """subprocess_runner, remembering the commands it ran."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], worktree: Path, limits: object) -> object:
        self.commands.append(command)
        return subprocess_runner(command, worktree, limits)


def test_unknown_branch_is_refused_before_anything_runs(repo: Path, tmp_path: Path) -> None:
    runner = Counting()
    with pytest.raises(GuardianError, match="no branch, commit or Sorte run 'nope'"):
        validate(make_settings(repo, tmp_path), "nope", runner=runner)
    assert runner.commands == []
    assert not (tmp_path / "guardian").exists()


def test_unknown_baseline_and_bad_tolerances_are_refused(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GuardianError, match="baseline nope not found"):
        validate(make_settings(repo, tmp_path), "main", baseline="nope", runner=Counting())
    with pytest.raises(GuardianError, match="guardian.tolerances is invalid"):
        validate(make_settings(repo, tmp_path, tolerances={"sharpy": 1.0}), "main", runner=Counting())


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GuardianError, match="not inside a git repository"):
        validate(make_settings(tmp_path, tmp_path), "main", runner=Counting())


@pytest.mark.slow
def test_one_function_change_gets_every_gate_and_a_saved_verdict(repo: Path, tmp_path: Path) -> None:
    rel, old, new = ONE_FUNCTION
    sha = branch(repo, "cand-lookback", {rel: patch_function(repo, rel, old, new)})
    settings = make_settings(repo, tmp_path)
    runner = Counting()
    events: list[tuple[str, str]] = []
    verdict = validate(settings, "cand-lookback", runner=runner, progress=lambda g, s, r: events.append((g, s)))

    assert [g.gate for g in verdict.gates] == ["integrity", "security", "tests", "benchmark"]
    statuses = {g.gate: g.status for g in verdict.gates}
    assert statuses["integrity"] == "pass" and statuses["security"] == "pass", verdict.to_text()
    assert statuses["tests"] == "pass", verdict.to_text()
    assert statuses["benchmark"] in ("pass", "inconclusive"), verdict.to_text()
    assert verdict.candidate.startswith("cand-lookback@") and verdict.baseline.startswith("main@")
    assert sorted(events) == sorted([(g, s) for g in statuses for s in ("start", "done")])
    saved = json.loads((tmp_path / "guardian" / "verdicts" / f"{sha[:12]}.json").read_text())
    assert saved["overall"] == verdict.overall and len(saved["gates"]) == 4
    # The benchmark backtests through its own strategy host (not the runner's commands); the
    # baseline's report is cached per commit, so a second validation reuses it.
    assert len(list((tmp_path / "guardian" / "baseline").glob("*.json"))) == 1

    again = Counting()
    second = validate(settings, "cand-lookback", runner=again)
    baseline_column = [m.baseline for m in verdict.gate("benchmark").metrics]
    assert [m.baseline for m in second.gate("benchmark").metrics] == baseline_column


@pytest.mark.slow
def test_deleting_a_test_fails_integrity_and_the_verdict(repo: Path, tmp_path: Path) -> None:
    branch(repo, "cand-delete-tests", {"tests/test_cli.py": None, "tests/strategies/test_contract.py": None})
    verdict = validate(make_settings(repo, tmp_path), "cand-delete-tests", runner=subprocess_runner)
    assert verdict.overall == "fail"
    integrity = verdict.gate("integrity")
    assert integrity.status == "fail"
    assert {f.file for f in integrity.findings} >= {"tests/test_cli.py", "tests/strategies/test_contract.py"}
    assert all(f.rule == "protected-file-deleted" for f in integrity.findings)


@pytest.mark.slow
def test_new_strategy_test_is_allowed_and_run(repo: Path, tmp_path: Path) -> None:
    test = "def test_added_by_the_candidate():\n    assert 1 + 1 == 2\n"
    branch(repo, "cand-new-test", {"tests/strategies/test_added.py": test})
    runner = Counting()
    verdict = validate(make_settings(repo, tmp_path), "cand-new-test", runner=runner)
    assert verdict.gate("integrity").status == "pass", verdict.to_text()
    tests = verdict.gate("tests")
    # Two runs: the protected suite without the candidate's test, and the candidate's test alone.
    assert tests.status == "pass", tests.summary
    assert tests.details["candidate"]["tests"] == 1 and tests.details["protected"]["tests"] >= 1, tests.details
    pytest_runs = [c for c in runner.commands if "pytest" in c]
    assert sorted(c[-1] for c in pytest_runs) == ["tests/strategies", "tests/strategies/test_added.py"]


def refusing_runner(command: list[str], worktree: Path, limits: object) -> LocalResult:
    """A sandbox that runs nothing: every sandboxed gate errors, the host-side gates decide."""
    return LocalResult(1, "", "not run in this test")


@pytest.mark.parametrize(
    ("name", "changes", "path"),
    [
        ("abs-link", {"strategies/momentum.py": Link("/etc/passwd")}, "strategies/momentum.py"),
        ("up-link", {"strategies/up.py": Link("../../../../etc/shadow")}, "strategies/up.py"),
        ("dot-env", {".env": "SORTE_TRADING__LIVE=true\n"}, ".env"),
        ("huge", {"assets/huge.bin": b"\0" * (3 << 20)}, "assets/huge.bin"),
    ],
)
def test_hostile_trees_get_a_clean_fail_verdict(
    repo: Path, tmp_path: Path, name: str, changes: dict, path: str
) -> None:
    """Trees `git archive` could not even export (absolute symlinks) fail by name, without a crash."""
    commit(repo, name, changes)
    verdict = validate(make_settings(repo, tmp_path), name, runner=refusing_runner)
    assert verdict.overall == "fail"
    integrity = verdict.gate("integrity")
    assert integrity.status == "fail" and path in integrity.summary
    assert [f.file for f in integrity.findings] == [path]
    assert (tmp_path / "guardian" / "verdicts").is_dir()
