"""Edit service: apply an EditPlan on a run's own branch and commit it, for every front-end.

The CLI, Telegram and the agent call these functions; none of them touches git or the
editor directly. A refused plan writes nothing and commits nothing, and a run created for
it is removed again, so a refusal leaves no trace in the repository.
"""

from __future__ import annotations

import fcntl
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from sorte import paths
from sorte.config import Settings
from sorte.editing import gitops, run_worktrees
from sorte.editing.git_records import open_repo, resolve_base, validate_run_id
from sorte.editing.gitops import BranchInfo, GitIdentity, MergeMode

if TYPE_CHECKING:
    from sorte.editing.plan import EditPlan


class EditOutcome(BaseModel):
    """What an edit did: the run's branch, its new commit (None on a dry run or when nothing
    changed), the plan's diff, the whole branch's diff against its base, the files changed."""

    run_id: str
    branch: str
    commit: str | None
    diff: str
    branch_diff: str
    changed: list[str]
    dry_run: bool
    kept: bool  # False when the run's branch was removed again (dry run or no change on a new run)


@dataclass(frozen=True)
class GitConfig:
    repo_root: Path
    worktrees_dir: Path
    base: str | None
    identity: GitIdentity
    merge_mode: MergeMode


def git_config(settings: Settings) -> GitConfig:
    """Where runs live and who commits (the ``git`` settings section)."""
    git = settings.git
    return GitConfig(
        repo_root=paths.repo_root(settings),
        worktrees_dir=paths.worktrees_dir(settings),
        base=git.base_branch,
        identity=GitIdentity(git.author_name, git.author_email),
        merge_mode=git.merge_mode,
    )


@contextmanager
def _locked(cfg: GitConfig) -> Iterator[None]:
    """One git-changing operation at a time across processes (CLI, Telegram, agent): the run
    records and worktrees are shared, and two edits of one run id must not interleave."""
    cfg.worktrees_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.worktrees_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_run_id() -> str:
    """Time-ordered and unique enough for one repository: 20261122-201500-a1b2c3."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def load_plan_file(path: Path) -> EditPlan:
    """Read and validate a plan file; a missing file or bad JSON is an EditRefused naming it."""
    from sorte.editing.plan import EditRefused, load_plan

    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise EditRefused(None, None, f"cannot read plan file {path}: {exc.strerror or exc}") from None
    return load_plan(text)


def _apply(plan: EditPlan, root: Path, write: bool):
    # Imported here so that git operations work without the editor's LibCST stack loaded.
    from sorte.editing.apply import apply_plan

    return apply_plan(plan, root, write=write)


def edit_on_branch(
    settings: Settings,
    plan: EditPlan,
    request: str | None = None,
    run_id: str | None = None,
    dry_run: bool = False,
) -> EditOutcome:
    """Apply ``plan`` in the run's worktree and commit it there (one commit per plan).

    Re-running a run id reuses its branch; the same plan is never committed twice."""
    cfg = git_config(settings)
    run_id = validate_run_id(run_id or new_run_id())
    with _locked(cfg):
        return _edit_locked(cfg, plan, (request or plan.summary).strip(), run_id, dry_run)


def _edit_locked(cfg: GitConfig, plan: EditPlan, request: str, run_id: str, dry_run: bool) -> EditOutcome:
    run = run_worktrees.open_run(cfg.repo_root, run_id, request, worktrees_dir=cfg.worktrees_dir, base=cfg.base)
    try:
        result = _apply(plan, run.path, write=not dry_run)
        sha = None
        if not dry_run:
            key = gitops.plan_key(plan.model_dump_json())
            sha = gitops.commit_run(
                run, request, plan.summary, paths=sorted(result.changed) or None, key=key, identity=cfg.identity
            )
    except BaseException:
        if run.created:
            run_worktrees.discard_run(cfg.repo_root, run_id)
        raise
    kept = not (run.created and sha is None)
    branch_diff = gitops.diff(cfg.repo_root, run_id) if kept else result.diff
    if not kept:
        run_worktrees.discard_run(cfg.repo_root, run_id)
    return EditOutcome(
        run_id=run_id,
        branch=run.branch,
        commit=sha,
        diff=result.diff,
        branch_diff=branch_diff,
        changed=sorted(result.changed),
        dry_run=dry_run,
        kept=kept,
    )


def branches(settings: Settings) -> list[BranchInfo]:
    return gitops.list_branches(git_config(settings).repo_root)


def branch_diff(settings: Settings, run_id: str) -> str:
    return gitops.diff(git_config(settings).repo_root, run_id)


def abandon(settings: Settings, run_id: str) -> None:
    cfg = git_config(settings)
    with _locked(cfg):
        gitops.abandon(cfg.repo_root, run_id)


def merge_once(settings: Settings, run_id: str) -> str:
    """Merge an approved run unless it already is, or a killed merge already moved the base (a
    resumed run must not fail on its own merge)."""
    cfg = git_config(settings)
    with _locked(cfg):
        done = gitops.merged_sha(cfg.repo_root, run_id) or gitops.finish_interrupted_merge(cfg.repo_root, run_id)
        return done or gitops.merge(cfg.repo_root, run_id, cfg.merge_mode, identity=cfg.identity)


def merge(settings: Settings, run_id: str, mode: MergeMode | None = None) -> str:
    """Merge an approved run into its base; ``mode`` defaults to the configured one (ff)."""
    cfg = git_config(settings)
    with _locked(cfg):
        return gitops.merge(cfg.repo_root, run_id, mode or cfg.merge_mode, identity=cfg.identity)


# -- what the agent reads of a run's git state ---------------------------------------------------
def run_tree(settings: Settings, run_id: str) -> Path:
    """The run's worktree once it exists (a repair builds on the branch), else the base checkout."""
    root = paths.repo_root(settings)
    run = run_worktrees.find_run(root, run_id)
    return run.path if run is not None and run.path.is_dir() else root


def branch_tip(settings: Settings, branch: str) -> str:
    """The full sha ``branch`` points at (a resumed run finds its plan already committed)."""
    return open_repo(git_config(settings).repo_root).git.rev_parse(f"refs/heads/{branch}")


def base_branch(settings: Settings) -> str:
    """The branch runs start from and merge into: ``git.base_branch``, else main, else master."""
    cfg = git_config(settings)
    return resolve_base(open_repo(cfg.repo_root), cfg.base)


def diff_stat(settings: Settings, base: str, branch: str) -> str:
    """``git diff --stat`` of ``branch`` since it left ``base`` (a pull request's summary)."""
    return open_repo(git_config(settings).repo_root).git.diff("--stat", f"{base}...{branch}")
