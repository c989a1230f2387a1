"""A run's branch and worktree: opened from the base branch, reopened after a crash (its
leftovers repaired), found, or discarded. Each run has its own git worktree
(``<data_dir>/worktrees/<run-id>``) on a branch ``sorte/<run-id>-<slug>``, never the checkout
the runtime or the user is using."""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import git

from sorte.editing import git_locks
from sorte.editing.git_records import (
    GitOpsError,
    open_repo,
    ref_sha,
    registered_worktrees,
    resolve_base,
    run_config,
    run_git,
    set_run_config,
    try_git,
    validate_run_id,
)

BRANCH_PREFIX = "sorte/"


@dataclass(frozen=True)
class RunWorktree:
    run_id: str
    branch: str
    path: Path
    base: str
    base_sha: str
    created: bool  # False when an existing run was reopened


def slugify(text: str, max_len: int = 40) -> str:
    """ASCII slug of a request ("aumenta o stop loss" -> "aumenta-o-stop-loss")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "edit"


def _default_worktrees(repo: git.Repo) -> Path:
    if repo.working_tree_dir is None:  # a bare repository has no checkout to keep runs beside
        raise GitOpsError(f"{repo.git_dir} is a bare repository; give the worktrees folder")
    return Path(repo.working_tree_dir) / "var" / "worktrees"


def open_run(
    repo_root: Path,
    run_id: str,
    request: str,
    *,
    worktrees_dir: Path | None = None,
    base: str | None = None,
) -> RunWorktree:
    """Open (or reopen) the worktree and branch of a run. Idempotent for a given run id."""
    validate_run_id(run_id)
    repo = open_repo(repo_root)
    root = (worktrees_dir or _default_worktrees(repo)).resolve()
    branch = run_config(repo, run_id, "branch")
    if branch is None:
        return _create_run(repo, run_id, request, root, resolve_base(repo, base))
    return _reopen_run(repo, run_id, branch)


def _create_run(repo: git.Repo, run_id: str, request: str, root: Path, base: str) -> RunWorktree:
    base_sha = run_git(repo, "rev-parse", f"refs/heads/{base}").strip()
    branch = f"{BRANCH_PREFIX}{run_id}-{slugify(request)}"
    path = root / run_id
    if ref_sha(repo, f"refs/heads/{branch}"):
        raise GitOpsError(f"branch {branch} exists but belongs to no recorded run; delete it or pick another run id")
    # Recorded first: a crash between here and the worktree leaves a run that reopening repairs.
    # `branch` goes last: its presence is what makes the run recorded, so a crash among these
    # writes leaves an unrecorded run that is simply created again.
    set_run_config(repo, run_id, base=base, baseSha=base_sha, path=str(path), state="open", branch=branch)
    _clear_stale_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), base_sha)
    return RunWorktree(run_id, branch, path, base, base_sha, created=True)


def _reopen_run(repo: git.Repo, run_id: str, branch: str) -> RunWorktree:
    state = run_config(repo, run_id, "state") or "open"
    if state != "open":
        raise GitOpsError(f"run {run_id} was {state}; start a new run id")
    base, base_sha = run_config(repo, run_id, "base") or "main", run_config(repo, run_id, "baseSha") or ""
    path = Path(run_config(repo, run_id, "path") or "")
    if not ref_sha(repo, f"refs/heads/{branch}"):
        run_git(repo, "branch", branch, base_sha)  # crashed before the worktree was added
    if (path / ".git").is_file() and registered_worktrees(repo).get(path.resolve()) == branch:
        # The worktree is Sorte's own: leftovers of a crashed apply are discarded, and the
        # plan, being idempotent, is applied again on the committed state.
        wt = git.Repo(path)
        _remove_stale_locks(repo, wt, branch)
        run_git(wt, "reset", "--quiet", "--hard", "HEAD")
        run_git(wt, "clean", "--quiet", "-fd")
    else:
        # A crash inside `git worktree add` leaves its registration locked ("initializing"):
        # unlock it, drop the half-made folder, then prune the registration.
        try_git(repo, "worktree", "unlock", str(path))
        _clear_stale_dir(path)
        run_git(repo, "worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git(repo, "worktree", "add", "--quiet", str(path), branch)
    return RunWorktree(run_id, branch, path, base, base_sha, created=False)


def _remove_stale_locks(repo: git.Repo, wt: git.Repo, branch: str) -> None:
    """A git process killed mid-commit leaves its lock files; under the run lock no other Sorte
    process uses this worktree, but a git orphaned by the kill may still be finishing."""
    gitdir = Path(run_git(wt, "rev-parse", "--absolute-git-dir").strip())
    common = Path(run_git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    git_locks.remove_stale((gitdir / "index.lock", gitdir / "HEAD.lock", common / "refs" / "heads" / f"{branch}.lock"))


def _clear_stale_dir(path: Path) -> None:
    """Remove the leftover of a worktree whose registration is gone; refuse anything else."""
    if not path.exists():
        return
    if path.is_dir() and ((path / ".git").is_file() or not any(path.iterdir())):
        shutil.rmtree(path)
        return
    raise GitOpsError(f"{path} exists and is not a Sorte worktree; move it away")


def find_run(repo_root: Path, run_id: str) -> RunWorktree | None:
    """The recorded run, or None. Does not create or repair anything."""
    repo = open_repo(repo_root)
    branch = run_config(repo, validate_run_id(run_id), "branch")
    if branch is None:
        return None
    return RunWorktree(
        run_id,
        branch,
        Path(run_config(repo, run_id, "path") or ""),
        run_config(repo, run_id, "base") or "main",
        run_config(repo, run_id, "baseSha") or "",
        created=False,
    )


def discard_run(repo_root: Path, run_id: str) -> None:
    """Forget a run entirely (worktree, branch, record): for a fresh run whose plan was refused."""
    repo = open_repo(repo_root)
    run = find_run(repo_root, run_id)
    if run is None:
        return
    remove_worktree(repo, run.path)
    if ref_sha(repo, f"refs/heads/{run.branch}"):
        run_git(repo, "branch", "-D", "--quiet", run.branch)
    try_git(repo, "config", "--local", "--remove-section", f"sorte.{run_id}")


def remove_worktree(repo: git.Repo, path: Path) -> None:
    if path.exists() and path.resolve() in registered_worktrees(repo):
        run_git(repo, "worktree", "remove", "--force", str(path))
    elif path.exists():
        _clear_stale_dir(path)
    run_git(repo, "worktree", "prune")
