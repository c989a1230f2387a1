"""A minimal repository tree for editor tests: the real strategies/ plus protected files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import structlog
from gitrepo import git

from sorte.config import REPO_ROOT

PROTECTED_FILES = {
    "tests/test_existing.py": "def test_existing():\n    assert True\n",
    "tests/strategies/test_old.py": "def test_old():\n    assert True\n",
    "guardian/rules.yaml": "rules: []\n",
    "bench/data/prices.csv": "time,close\n1,2\n",
    "sorte/core.py": "VALUE = 1\n",
    "commander/__init__.py": "",
    "sandbox/__init__.py": "",
    "knowledge/__init__.py": "",
}


def make_tree(root: Path) -> Path:
    shutil.copytree(REPO_ROOT / "strategies", root / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    for rel, text in PROTECTED_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes (caches left out): compared before and after to prove what changed."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "repo")


@pytest.fixture()
def snap():
    """The snapshot function, for tests (test modules cannot import conftest)."""
    return snapshot


@pytest.fixture(scope="module")
def git_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One committed repository (strategies/ plus the protected files) per test module: the
    service tests of refused plans share it, since a refusal must leave it exactly as it was."""
    repo = make_tree(tmp_path_factory.mktemp("git-tree") / "repo")
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "initial")
    return repo


@pytest.fixture()
def no_namespaces(monkeypatch: pytest.MonkeyPatch):
    """The validator as a non-root user (or a container without CAP_SYS_ADMIN) gets it: no
    namespaces. Started afresh under that condition and stopped after; yields the structured
    log events, with the once-per-process warning memory emptied."""
    import sandbox.confined
    from sorte.editing import sandboxed

    sandboxed.shutdown()
    monkeypatch.setattr(sandbox.confined, "namespaces_available", lambda: False)
    monkeypatch.setattr(sandboxed, "_warned", set())
    with structlog.testing.capture_logs() as events:
        yield events
    sandboxed.shutdown()
