"""The integrity gate on changes read from git: only strategies/*.py may change, and new
tests/strategies/test_*.py be added; everything else fails with the path named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from guardian import run_integrity_gate
from guardian.changes import Change, read_changes, show_path
from tests.guardian.git_trees import File, Gitlink, Link, commit, commit_top_entry

BASE = {
    "strategies/momentum.py": "A = 1\n",
    "strategies/cascade.py": "STAGES = []\n",
    "tests/test_a.py": "def test_a():\n    assert True\n",
    "tests/strategies/test_contract.py": "def test_c():\n    assert True\n",
    "guardian/rules/sorte.yml": "rules: []\n",
    "sorte/core.py": "X = 1\n",
}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    for rel, text in BASE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@l", *args], cwd=tmp_path, check=True)
    return tmp_path


def gate(repo: Path, changes: dict) -> tuple[str, dict[str, str]]:
    commit(repo, "cand", changes)
    result = run_integrity_gate(read_changes(repo / ".git", "main", "cand"))
    return result.status, {f.file: f.rule for f in result.findings}


def test_strategy_changes_and_new_tests_pass(repo: Path) -> None:
    status, found = gate(
        repo,
        {
            "strategies/momentum.py": "A = 2\n",
            "strategies/fresh_one.py": "B = 1\n",
            "tests/strategies/test_fresh_one.py": "def test_b():\n    pass\n",
        },
    )
    assert (status, found) == ("pass", {})


def test_protected_changes_fail_naming_files(repo: Path) -> None:
    status, found = gate(
        repo,
        {
            "guardian/rules/sorte.yml": "rules: [weakened]\n",
            "tests/test_a.py": None,
            "sorte/new.py": "",
            "tests/strategies/test_contract.py": "def test_c():\n    pass\n",
            "strategies/momentum.py": None,
        },
    )
    assert status == "fail"
    assert found == {
        "guardian/rules/sorte.yml": "protected-file-modified",
        "tests/test_a.py": "protected-file-deleted",
        "sorte/new.py": "protected-file-added",
        "tests/strategies/test_contract.py": "protected-file-modified",
        "strategies/momentum.py": "strategy-deleted",
    }


@pytest.mark.parametrize(
    ("path", "entry", "rule"),
    [
        ("strategies/link.py", Link("/etc/passwd"), "symlink"),
        ("strategies/momentum.py", Link("../sorte/core.py"), "symlink"),
        ("strategies/momentum.py", File("A = 1\n", "100755"), "mode-changed"),
        ("strategies/new.py", File("A = 1\n", "100755"), "mode-changed"),
        ("vendor", Gitlink(), "submodule"),
        ("strategies/sub/x.py", "A = 1\n", "protected-file-added"),
        ("strategies/data.csv", "1,2\n", "protected-file-added"),
        ("strategies/odd-name.py", "A = 1\n", "protected-file-added"),
        ("tests/strategies/conftest.py", "X = 1\n", "protected-file-added"),
        ("tests/strategies/helper.py", "X = 1\n", "protected-file-added"),
        ("conftest.py", "X = 1\n", "protected-file-added"),
        (".env", "SORTE_LIVE=1\n", "protected-file-added"),
        ("sorte.yaml", "trading: {live: true}\n", "protected-file-added"),
        (".github/workflows/x.yml", "on: push\n", "protected-file-added"),
    ],
)
def test_each_forbidden_change_is_named(repo: Path, path: str, entry: object, rule: str) -> None:
    status, found = gate(repo, {path: entry})
    assert status == "fail"
    assert found == {path: rule}


def test_large_strategy_fails(repo: Path) -> None:
    status, found = gate(repo, {"strategies/momentum.py": "A = 1\n" + "#" * (1 << 20)})
    assert (status, found) == ("fail", {"strategies/momentum.py": "file-too-large"})


def test_git_refused_names_are_named_escaped(repo: Path) -> None:
    commit_top_entry(repo, "dots", b"..", "x = 1\n")
    result = run_integrity_gate(read_changes(repo / ".git", "main", "dots"))
    assert result.status == "fail" and [f.file for f in result.findings] == [".."]
    commit(repo, "newline", {b"strategies/a\nb.py": "x = 1\n", b"caf\xe9.py": "x"})
    result = run_integrity_gate(read_changes(repo / ".git", "main", "newline"))
    assert {f.file for f in result.findings} == {"strategies/a\\nb.py", "caf\\xe9.py"}
    assert "\n" not in result.summary


def test_show_path_escapes_control_characters() -> None:
    assert show_path(b"a\x1b[31mred\n.py") == "a\\x1b[31mred\\n.py"
    change = Change(b"strategies/x.py", "A", "000000", "100644", "0" * 40, "1" * 40, size=None)
    assert [f.rule for f in run_integrity_gate([change]).findings] == ["file-too-large"]
