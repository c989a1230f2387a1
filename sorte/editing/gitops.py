"""Git side of self-modification: one worktree and branch per run, atomic commits, merge, abandon.

Every run works in its own git worktree on its own branch (``sorte.editing.run_worktrees``).
Each side effect is keyed by the run id so that a crashed run resumes without duplicates: the
run's branch, base and state are recorded in the repository's config (``[sorte "<run-id>"]``,
``sorte.editing.git_records``), re-opening a run reuses its branch and worktree, and a plan
already committed on the branch (``Sorte-Plan:`` trailer) is not committed twice.
Abandoned branches are deleted but their tip is kept under ``refs/sorte/abandoned/`` for audit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

from sorte.editing.git_records import (
    GitOpsError,
    open_repo,
    ref_sha,
    registered_worktrees,
    require_run,
    run_config,
    run_git,
    set_run_config,
    try_git,
)
from sorte.editing.run_worktrees import RunWorktree, remove_worktree

ARCHIVE_PREFIX = "refs/sorte/abandoned/"
PLAN_TRAILER = "Sorte-Plan"
RUN_TRAILER = "Sorte-Run"
MergeMode = Literal["ff", "merge"]
RunState = Literal["open", "merged", "abandoned"]


class MergeConflict(GitOpsError):
    """The run branch does not merge cleanly into its base."""


@dataclass(frozen=True)
class GitIdentity:
    """Author and committer of every commit Sorte makes."""

    name: str = "Sorte"
    email: str = "sorte@localhost"

    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


@dataclass(frozen=True)
class BranchInfo:
    run_id: str
    branch: str
    state: RunState
    base: str
    ahead: int
    behind: int
    last_sha: str
    last_subject: str
    last_date: str
    worktree: Path | None


def plan_key(plan_json: str) -> str:
    """Stable key of a plan, written as a commit trailer so the same plan is committed once."""
    return hashlib.sha256(plan_json.encode()).hexdigest()[:16]


# -- commits and diffs -----------------------------------------------------------------------


def commit_message(request: str, summary: str, run_id: str, key: str | None) -> str:
    subject = " ".join(summary.split()) or "edit"
    subject = subject if len(subject) <= 72 else subject[:69] + "..."
    lines = [f"sorte: {subject}", "", f"Request: {request.strip()}", "", f"Plan: {summary.strip()}", ""]
    lines.append(f"{RUN_TRAILER}: {run_id}")
    if key:
        lines.append(f"{PLAN_TRAILER}: {key}")
    return "\n".join(lines) + "\n"


def commit_run(
    run: RunWorktree,
    request: str,
    summary: str,
    *,
    paths: list[str] | None = None,
    key: str | None = None,
    identity: GitIdentity = GitIdentity(),
) -> str | None:
    """Commit the run's changes in one commit; the existing sha if this plan was already
    committed on the branch; None if there is nothing to commit."""
    wt = git.Repo(run.path)
    if key:
        found = run_git(
            wt, "log", "--format=%H", "--fixed-strings", f"--grep={PLAN_TRAILER}: {key}", f"{run.base_sha}..HEAD"
        )
        if found.strip():
            return found.split()[0]
    run_git(wt, "add", "--all", "--", *(paths or ["."]))
    if try_git(wt, "diff", "--cached", "--quiet")[0] == 0:
        return None
    message = commit_message(request, summary, run.run_id, key)
    # No hooks, no signing: the commit must not depend on the host's git configuration.
    run_git(wt, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message, env=identity.env())
    return run_git(wt, "rev-parse", "HEAD").strip()


def _tip(repo: git.Repo, run_id: str) -> tuple[str, str, str]:
    """(ref, state, base) of a run: its branch, or its archive ref once abandoned."""
    branch, state = require_run(repo, run_id)
    ref = f"{ARCHIVE_PREFIX}{run_id}" if state == "abandoned" else f"refs/heads/{branch}"
    return ref, state, run_config(repo, run_id, "base") or "main"


def diff(repo_root: Path, run_id: str) -> str:
    """Unified diff of the run branch against the point where it left its base."""
    repo = open_repo(repo_root)
    ref, state, base = _tip(repo, run_id)
    start = run_config(repo, run_id, "baseSha") if state != "open" else None
    start = start or run_git(repo, "merge-base", f"refs/heads/{base}", ref).strip()
    return run_git(repo, "diff", "--no-color", "--no-ext-diff", start, ref)


# -- abandon, merge, list --------------------------------------------------------------------


def abandon(repo_root: Path, run_id: str) -> None:
    """Delete the run's worktree and branch; its tip stays under refs/sorte/abandoned/ for audit."""
    repo = open_repo(repo_root)
    branch, state = require_run(repo, run_id)
    if state != "open":
        raise GitOpsError(f"run {run_id} is already {state}")
    remove_worktree(repo, Path(run_config(repo, run_id, "path") or ""))
    tip = ref_sha(repo, f"refs/heads/{branch}")
    if tip:
        run_git(repo, "update-ref", f"{ARCHIVE_PREFIX}{run_id}", tip)
        run_git(repo, "branch", "-D", "--quiet", branch)
    set_run_config(repo, run_id, state="abandoned")


def merge(repo_root: Path, run_id: str, mode: MergeMode = "ff", *, identity: GitIdentity = GitIdentity()) -> str:
    """Merge an approved run into its base (fast-forward or merge commit); returns the new base sha.

    A conflict, a fast-forward that is not possible, or a dirty checkout of the base branch is
    refused before anything changes."""
    if mode not in ("ff", "merge"):
        raise GitOpsError(f"unknown merge mode {mode!r} (ff or merge)")
    repo, branch, state, base, base_sha, tip = _run_heads(repo_root, run_id)
    if state != "open":
        raise GitOpsError(f"run {run_id} is {state}; only open runs merge")
    if not base_sha or not tip:
        raise GitOpsError(f"run {run_id}: branch {branch if not tip else base} is missing")
    if try_git(repo, "merge-base", "--is-ancestor", tip, base_sha)[0] == 0:
        raise GitOpsError(f"run {run_id} has no commits that {base} lacks; nothing to merge")
    checkout = next((p for p, b in registered_worktrees(repo).items() if b == base), None)
    if checkout is not None and run_git(git.Repo(checkout), "status", "--porcelain", "--untracked-files=no").strip():
        raise GitOpsError(f"{checkout} has {base} checked out with uncommitted changes; commit or stash them first")
    if mode == "ff":
        new = _fast_forward(repo, run_id, base, base_sha, tip, checkout)
    else:
        new = _merge_commit(repo, run_id, branch, base, base_sha, tip, checkout, identity)
    _record_merged(repo, run_id, new)
    return new


def _run_heads(repo_root: Path, run_id: str) -> tuple[git.Repo, str, str, str, str | None, str | None]:
    """The run's repository, branch, state, base branch, and the base's and the run's tips."""
    repo = open_repo(repo_root)
    branch, state = require_run(repo, run_id)
    base = run_config(repo, run_id, "base") or "main"
    return repo, branch, state, base, ref_sha(repo, f"refs/heads/{base}"), ref_sha(repo, f"refs/heads/{branch}")


def _record_merged(repo: git.Repo, run_id: str, sha: str) -> None:
    set_run_config(repo, run_id, state="merged", mergedSha=sha)
    remove_worktree(repo, Path(run_config(repo, run_id, "path") or ""))


def merged_sha(repo_root: Path, run_id: str) -> str | None:
    """The base sha a run was merged at, or None while it is not merged (resumed runs ask first)."""
    repo = open_repo(repo_root)
    _, state = require_run(repo, run_id)
    return run_config(repo, run_id, "mergedSha") if state == "merged" else None


def finish_interrupted_merge(repo_root: Path, run_id: str) -> str | None:
    """Record a merge that moved the base branch but was killed before it recorded the run as
    merged; returns the base sha it merged at, or None when the run holds work not yet merged.

    The ref move is the merge's one atomic step, so a run whose commits the base already contains
    was merged: a resumed run then carries on instead of failing on "nothing to merge"."""
    repo, _, state, _, base_sha, tip = _run_heads(repo_root, run_id)
    if state != "open":
        return None
    started = run_config(repo, run_id, "baseSha")
    if not base_sha or not tip or tip == started:
        return None
    if try_git(repo, "merge-base", "--is-ancestor", tip, base_sha)[0] != 0:
        return None
    # The base's own line from the run's tip on: its oldest commit is the merge commit, unless
    # the tip itself is on that line (a fast-forward), and then the tip is where it merged.
    later = run_git(repo, "rev-list", "--first-parent", "--ancestry-path", f"{tip}..{base_sha}").split()
    merged = tip
    if later and run_git(repo, "rev-parse", f"{later[-1]}^1").strip() != tip:
        merged = later[-1]
    _record_merged(repo, run_id, merged)
    return merged


def _fast_forward(repo: git.Repo, run_id: str, base: str, base_sha: str, tip: str, checkout: Path | None) -> str:
    if try_git(repo, "merge-base", "--is-ancestor", base_sha, tip)[0] != 0:
        raise GitOpsError(
            f"cannot fast-forward {base} to run {run_id}: {base} has moved on since the run started "
            "(use --mode merge, or abandon and re-run)"
        )
    if checkout is not None:
        run_git(git.Repo(checkout), "merge", "--quiet", "--ff-only", tip)
    else:
        run_git(repo, "update-ref", f"refs/heads/{base}", tip, base_sha)
    return tip


def _merge_commit(
    repo: git.Repo,
    run_id: str,
    branch: str,
    base: str,
    base_sha: str,
    tip: str,
    checkout: Path | None,
    identity: GitIdentity,
) -> str:
    # merge-tree computes the result without touching any worktree, so a conflict is
    # reported before anything is written.
    status, out, errout = try_git(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", base_sha, tip)
    if status != 0:
        files = [line for line in out.splitlines()[1:] if line.strip()]
        raise MergeConflict(
            f"run {run_id} conflicts with {base} in {', '.join(files) or errout.strip() or 'its files'}; nothing merged"
        )
    message = f"Merge {branch} into {base}\n\n{RUN_TRAILER}: {run_id}\n"
    if checkout is not None:
        run_git(
            git.Repo(checkout),
            "-c",
            "commit.gpgsign=false",
            "merge",
            "--quiet",
            "--no-ff",
            "--no-verify",
            "-m",
            message,
            tip,
            env=identity.env(),
        )
        return run_git(repo, "rev-parse", f"refs/heads/{base}").strip()
    tree = out.splitlines()[0].strip()
    new = run_git(repo, "commit-tree", tree, "-p", base_sha, "-p", tip, "-m", message, env=identity.env()).strip()
    run_git(repo, "update-ref", f"refs/heads/{base}", new, base_sha)
    return new


def list_branches(repo_root: Path) -> list[BranchInfo]:
    """Every recorded Sorte run with its state, ahead/behind counts against its base, last commit."""
    repo = open_repo(repo_root)
    status, out, _ = try_git(repo, "config", "--local", "--get-regexp", r"^sorte\..*\.branch$")
    infos = []
    for line in out.splitlines() if status == 0 else []:
        key, _, branch = line.partition(" ")
        run_id = key[len("sorte.") : -len(".branch")]
        info = _branch_info(repo, run_id, branch)
        if info is not None:
            infos.append(info)
    return sorted(infos, key=lambda i: i.last_date, reverse=True)


def _branch_info(repo: git.Repo, run_id: str, branch: str) -> BranchInfo | None:
    ref, state, base = _tip(repo, run_id)
    if not ref_sha(repo, ref):
        return None
    behind = ahead = 0
    if ref_sha(repo, f"refs/heads/{base}"):
        behind, ahead = (
            int(n) for n in run_git(repo, "rev-list", "--left-right", "--count", f"{base}...{ref}").split()
        )
    sha, date, subject = run_git(repo, "log", "-1", "--format=%h%x00%cI%x00%s", ref).split("\x00", 2)
    path = Path(run_config(repo, run_id, "path") or "")
    worktree = path if state == "open" and path.resolve() in registered_worktrees(repo) else None
    return BranchInfo(run_id, branch, state, base, ahead, behind, sha, subject, date, worktree)  # type: ignore[arg-type]
