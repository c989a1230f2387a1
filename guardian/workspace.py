"""The trees a validation looks at: candidate, baseline and their merge base, exported from git.

Trees are exported with ``git archive`` into a private temporary folder (no ``.git`` inside,
nothing registered in the repository), so a crash leaves at most a temporary folder and the
candidate cannot read the repository's history or configuration from its sandbox.
"""

from __future__ import annotations

import compileall
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import git

from sorte.errors import SorteError

NEW_TESTS_DIR = "tests/strategies/"


class GuardianError(SorteError):
    """A validation that cannot start: unknown branch or ref, not a repository."""


@dataclass(frozen=True)
class Ref:
    label: str  # what the user named (branch, run id, ref)
    sha: str

    def short(self) -> str:
        return f"{self.label}@{self.sha[:10]}"


@dataclass
class Workspace:
    root: Path
    candidate: Path
    baseline: Path
    merge_base: Path
    changed: list[str] = field(default_factory=list)  # paths changed since the merge base
    added_tests: list[str] = field(default_factory=list)  # new files under tests/strategies/
    diff: str = ""

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def open_repository(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GuardianError(f"{path} is not inside a git repository (set git.repo_root)") from None


def _sha(repo: git.Repo, ref: str) -> str | None:
    status, out, _ = repo.git.execute(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        with_extended_output=True,
        with_exceptions=False,
    )
    return out.strip() if status == 0 and out.strip() else None


def resolve_candidate(repo: git.Repo, name: str) -> Ref:
    """A Sorte run id, a branch name or any commit-ish."""
    if not name or name.startswith("-"):
        raise GuardianError(f"invalid branch name {name!r}")
    status, branch, _ = repo.git.execute(
        ["git", "config", "--local", "--get", f"sorte.{name}.branch"], with_extended_output=True, with_exceptions=False
    )
    if status == 0 and branch.strip():
        sha = _sha(repo, f"refs/heads/{branch.strip()}")
        if sha:
            return Ref(branch.strip(), sha)
    sha = _sha(repo, name)
    if sha is None:
        raise GuardianError(
            f"no branch, commit or Sorte run {name!r} in {repo.working_tree_dir} (`sorte branches` lists the runs)"
        )
    return Ref(name, sha)


def resolve_baseline(repo: git.Repo, name: str | None) -> Ref:
    """``name``, else ``main``, else ``master``."""
    for candidate in [name] if name else ["main", "master"]:
        sha = _sha(repo, candidate)
        if sha:
            return Ref(candidate, sha)
    wanted = name or "main or master"
    raise GuardianError(f"baseline {wanted} not found in {repo.working_tree_dir} (set guardian.baseline)")


def export_tree(repo: git.Repo, sha: str, dest: Path) -> Path:
    """The files of commit ``sha`` under ``dest`` (readable by the sandbox's unprivileged user)."""
    buf = io.BytesIO()
    repo.archive(buf, treeish=sha, format="tar")
    buf.seek(0)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=buf) as tar:
        tar.extractall(dest, filter="data")
    # Byte-compiling executes nothing, and spares every sandboxed run (which may not write
    # .pyc files to the read-only tree) from compiling the same sources again.
    compileall.compile_dir(dest, quiet=2, workers=0)
    os.chmod(dest, 0o755)
    return dest


def prepare(repo: git.Repo, candidate: Ref, baseline: Ref) -> Workspace:
    """Export the three trees and collect what changed since the merge base."""
    status, out, _ = repo.git.execute(
        ["git", "merge-base", baseline.sha, candidate.sha], with_extended_output=True, with_exceptions=False
    )
    base_sha = out.strip() if status == 0 and out.strip() else baseline.sha
    root = Path(tempfile.mkdtemp(prefix="sorte-validate-"))
    os.chmod(root, 0o755)
    try:
        cand_dir = export_tree(repo, candidate.sha, root / "candidate")
        base_dir = export_tree(repo, baseline.sha, root / "baseline")
        mb_dir = base_dir if base_sha == baseline.sha else export_tree(repo, base_sha, root / "merge-base")
        names = repo.git.diff("--name-only", "-z", "--no-renames", base_sha, candidate.sha).split("\0")
        added = repo.git.diff("--name-only", "-z", "--diff-filter=A", base_sha, candidate.sha).split("\0")
        diff = repo.git.diff("--no-color", "--no-ext-diff", "--no-renames", base_sha, candidate.sha)
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Workspace(
        root=root,
        candidate=cand_dir,
        baseline=base_dir,
        merge_base=mb_dir,
        changed=[n for n in names if n],
        added_tests=[n for n in added if n.startswith(NEW_TESTS_DIR)],
        diff=diff,
    )
