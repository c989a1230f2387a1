"""The trees a validation builds: the baseline's files with the candidate's strategies laid over
them, the candidate's new tests apart, and the changed files for the scanners; nothing of the
candidate's tree is materialised as such (no symlink, no config, no conftest)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from guardian.workspace import (
    SCAN_RULES,
    SCAN_TREE,
    GuardianError,
    export_tree,
    inspect_candidate,
    open_repository,
    prepare,
    resolve_baseline,
    resolve_candidate,
)
from tests.guardian.git_trees import File, Gitlink, Link, commit, commit_top_entry

BASE = {
    "strategies/momentum.py": "A = 1\n",
    "strategies/breakout.py": "B = 1\n",
    "tests/conftest.py": "X = 1\n",
    "tests/strategies/test_contract.py": "def test_c():\n    assert True\n",
    "guardian/rules/sorte.yml": "rules: []\n",
}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel, text in BASE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@l", *args], cwd=root, check=True)
    return root


def build(repo: Path, name: str):
    r = open_repository(repo)
    return prepare(r, resolve_candidate(r, name), resolve_baseline(r, "main"))


def files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_candidate_tree_is_the_baseline_with_only_its_strategies(repo: Path) -> None:
    commit(
        repo,
        "cand",
        {
            "strategies/momentum.py": "A = 2\n",
            "strategies/fresh.py": "F = 1\n",
            "strategies/evil.py": Link("/etc/passwd"),
            "tests/strategies/test_fresh.py": "def test_f():\n    pass\n",
            "tests/conftest.py": "import pytest  # weakened\n",
            "tests/strategies/conftest.py": "X = 2\n",
            "sorte.yaml": "live: true\n",
            "vendor": Gitlink(),
            "strategies/breakout.py": None,
        },
    )
    ws = build(repo, "cand")
    try:
        expected = {**BASE, "strategies/momentum.py": "A = 2\n", "strategies/fresh.py": "F = 1\n"}
        assert files(ws.candidate) == expected
        assert files(ws.baseline) == BASE
        assert ws.candidate_tests is not None
        assert files(ws.candidate_tests) == {**expected, "tests/strategies/test_fresh.py": "def test_f():\n    pass\n"}
        assert ws.added_tests == ["tests/strategies/test_fresh.py"]
        scanned = files(ws.scan / SCAN_TREE)
        assert set(scanned) == {
            "strategies/momentum.py",
            "strategies/fresh.py",
            "tests/strategies/test_fresh.py",
            "tests/conftest.py",
            "tests/strategies/conftest.py",
            "sorte.yaml",
        }
        assert (ws.scan / SCAN_RULES).read_bytes() == (Path("guardian/rules/sorte.yml")).read_bytes()
        assert not any(p.is_symlink() for tree in (ws.root,) for p in tree.rglob("*"))
    finally:
        ws.remove()
    assert not ws.root.exists()


def test_stale_byte_code_of_a_replaced_strategy_is_dropped(repo: Path) -> None:
    commit(repo, "same-size", {"strategies/momentum.py": "A = 9\n"})  # same size as the baseline's
    ws = build(repo, "same-size")
    try:
        assert list((ws.baseline / "strategies" / "__pycache__").glob("momentum.*.pyc"))
        assert not list((ws.candidate / "strategies" / "__pycache__").glob("momentum.*.pyc"))
        assert list((ws.candidate / "strategies" / "__pycache__").glob("breakout.*.pyc"))
    finally:
        ws.remove()


def test_hostile_baseline_entries_are_never_materialised(repo: Path, tmp_path: Path) -> None:
    commit(
        repo,
        "odd",
        {
            "abs": Link("/etc/passwd"),
            "up": Link("../../../../etc"),
            "run.sh": File("#!/bin/sh\n", "100755"),
            b"name\nwith newline.txt": "x",
            b"bad\xff": "y",
        },
    )
    commit_top_entry(repo, "dots", b"..", "escaped\n", base="odd")
    r = open_repository(repo)
    dest = export_tree(r, resolve_candidate(r, "dots").sha, tmp_path / "export")
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert names == set(BASE) | {"run.sh"}
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert os.stat(dest / "strategies" / "momentum.py").st_mode & 0o777 == 0o644


def test_unscanned_files_are_listed(repo: Path) -> None:
    commit(repo, "big", {"data.bin": b"\0" * ((1 << 20) + 1), b"bad\xff.py": "x = 1\n", b"a\nb.py": "x = 1\n"})
    r = open_repository(repo)
    cs = inspect_candidate(r, resolve_candidate(r, "big"), resolve_baseline(r, "main"))
    unscanned = cs.unscanned()
    assert set(unscanned) == {"data.bin", "bad\\xff.py", "a\\nb.py"}
    assert "1048577 bytes" in unscanned["data.bin"]
    assert "name" in unscanned["bad\\xff.py"]
    assert set(cs.texts()) == {"bad\\xff.py", "a\\nb.py"}  # the secret scan still reads odd names


def test_unknown_commit_is_a_clean_error(repo: Path) -> None:
    r = open_repository(repo)
    with pytest.raises(GuardianError, match="git ls-tree failed"):
        export_tree(r, "0" * 40, repo.parent / "nowhere")
