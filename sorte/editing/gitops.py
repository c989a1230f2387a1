"""Git side of self-modification: one worktree and branch per run, atomic commits, merge, abandon.

Every run works in its own git worktree (``<data_dir>/worktrees/<run-id>``) on a branch
``sorte/<run-id>-<slug>`` created from the base branch, never in the checkout the runtime or
the user is using. Each side effect is keyed by the run id so that a crashed run resumes
without duplicates: the run's branch, base and state are recorded in the repository's
config (``[sorte "<run-id>"]``), re-opening a run reuses its branch and worktree, and a plan
already committed on the branch (``Sorte-Plan:`` trailer) is not committed twice.
Abandoned branches are deleted but their tip is kept under ``refs/sorte/abandoned/`` for audit.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git
import structlog

from sorte.editing import git_locks
from sorte.errors import SorteError

log = structlog.get_logger(__name__)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BRANCH_PREFIX = "sorte/"
ARCHIVE_PREFIX = "refs/sorte/abandoned/"
PLAN_TRAILER = "Sorte-Plan"
RUN_TRAILER = "Sorte-Run"
MergeMode = Literal["ff", "merge"]
RunState = Literal["open", "merged", "abandoned"]


class GitOpsError(SorteError):
    """A git operation of a run failed or was refused; nothing was changed."""


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
class RunWorktree:
    run_id: str
    branch: str
    path: Path
    base: str
    base_sha: str
    created: bool  # False when an existing run was reopened


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


# -- helpers ---------------------------------------------------------------------------------


def validate_run_id(run_id: str) -> str:
    """Run ids end up in branch names, ref names, config keys and paths: safe characters only."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise GitOpsError(
            f"invalid run id {run_id!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return run_id


def slugify(text: str, max_len: int = 40) -> str:
    """ASCII slug of a request ("aumenta o stop loss" -> "aumenta-o-stop-loss")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "edit"


def plan_key(plan_json: str) -> str:
    """Stable key of a plan, written as a commit trailer so the same plan is committed once."""
    return hashlib.sha256(plan_json.encode()).hexdigest()[:16]


def open_repo(path: Path) -> git.Repo:
    """The repository that holds ``path`` (its main checkout, even if ``path`` is in a worktree)."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitOpsError(f"{path} is not inside a git repository") from None
    common = Path(repo.git.rev_parse("--path-format=absolute", "--git-common-dir"))
    if common.name == ".git":  # the main checkout, not a linked worktree
        return git.Repo(common.parent)
    return git.Repo(common)


def _git(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        return repo.git.execute(["git", *args], env=env)
    except git.GitCommandError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().replace("\n", " ")
        raise GitOpsError(f"git {args[0]} failed: {detail}") from None


def _try(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    status, out, errout = repo.git.execute(["git", *args], env=env, with_extended_output=True, with_exceptions=False)
    return status, out, errout


def _config(repo: git.Repo, run_id: str, key: str) -> str | None:
    status, out, _ = _try(repo, "config", "--local", "--get", f"sorte.{run_id}.{key}")
    return out.strip() if status == 0 else None


def _set_config(repo: git.Repo, run_id: str, **values: str) -> None:
    for key, value in values.items():
        _git(repo, "config", "--local", f"sorte.{run_id}.{key}", value)


def _ref_sha(repo: git.Repo, ref: str) -> str | None:
    status, out, _ = _try(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.strip() if status == 0 else None


def _default_worktrees(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir) / "var" / "worktrees"


def resolve_base(repo: git.Repo, base: str | None = None) -> str:
    """The branch runs start from: ``base`` if given, else ``main``, else ``master``."""
    candidates = [base] if base else ["main", "master"]
    for name in candidates:
        if _ref_sha(repo, f"refs/heads/{name}"):
            return name
    raise GitOpsError(f"base branch {' or '.join(candidates)} not found in {repo.working_tree_dir}")


def _worktrees(repo: git.Repo) -> dict[Path, str | None]:
    """Registered worktrees: path -> checked-out branch (None when detached)."""
    found: dict[Path, str | None] = {}
    path: Path | None = None
    for line in _git(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line[9:]).resolve()
            found[path] = None
        elif line.startswith("branch ") and path is not None:
            found[path] = line[7:].removeprefix("refs/heads/")
    return found


# -- runs ------------------------------------------------------------------------------------


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
    branch = _config(repo, run_id, "branch")
    if branch is None:
        return _create_run(repo, run_id, request, root, resolve_base(repo, base))
    return _reopen_run(repo, run_id, branch)


def _create_run(repo: git.Repo, run_id: str, request: str, root: Path, base: str) -> RunWorktree:
    base_sha = _git(repo, "rev-parse", f"refs/heads/{base}").strip()
    branch = f"{BRANCH_PREFIX}{run_id}-{slugify(request)}"
    path = root / run_id
    if _ref_sha(repo, f"refs/heads/{branch}"):
        raise GitOpsError(f"branch {branch} exists but belongs to no recorded run; delete it or pick another run id")
    # Recorded first: a crash between here and the worktree leaves a run that reopening repairs.
    # `branch` goes last: its presence is what makes the run recorded, so a crash among these
    # writes leaves an unrecorded run that is simply created again.
    _set_config(repo, run_id, base=base, baseSha=base_sha, path=str(path), state="open", branch=branch)
    _clear_stale_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), base_sha)
    return RunWorktree(run_id, branch, path, base, base_sha, created=True)


def _reopen_run(repo: git.Repo, run_id: str, branch: str) -> RunWorktree:
    state = _config(repo, run_id, "state") or "open"
    if state != "open":
        raise GitOpsError(f"run {run_id} was {state}; start a new run id")
    base, base_sha = _config(repo, run_id, "base") or "main", _config(repo, run_id, "baseSha") or ""
    path = Path(_config(repo, run_id, "path") or "")
    if not _ref_sha(repo, f"refs/heads/{branch}"):
        _git(repo, "branch", branch, base_sha)  # crashed before the worktree was added
    if (path / ".git").is_file() and _worktrees(repo).get(path.resolve()) == branch:
        # The worktree is Sorte's own: leftovers of a crashed apply are discarded, and the
        # plan, being idempotent, is applied again on the committed state.
        wt = git.Repo(path)
        _remove_stale_locks(repo, wt, branch)
        _git(wt, "reset", "--quiet", "--hard", "HEAD")
        _git(wt, "clean", "--quiet", "-fd")
    else:
        # A crash inside `git worktree add` leaves its registration locked ("initializing"):
        # unlock it, drop the half-made folder, then prune the registration.
        _try(repo, "worktree", "unlock", str(path))
        _clear_stale_dir(path)
        _git(repo, "worktree", "prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(repo, "worktree", "add", "--quiet", str(path), branch)
    return RunWorktree(run_id, branch, path, base, base_sha, created=False)


def _remove_stale_locks(repo: git.Repo, wt: git.Repo, branch: str) -> None:
    """A git process killed mid-commit leaves its lock files; under the run lock no other Sorte
    process uses this worktree, but a git orphaned by the kill may still be finishing."""
    gitdir = Path(_git(wt, "rev-parse", "--absolute-git-dir").strip())
    common = Path(_git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
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
    branch = _config(repo, validate_run_id(run_id), "branch")
    if branch is None:
        return None
    return RunWorktree(
        run_id,
        branch,
        Path(_config(repo, run_id, "path") or ""),
        _config(repo, run_id, "base") or "main",
        _config(repo, run_id, "baseSha") or "",
        created=False,
    )


def _require_run(repo: git.Repo, run_id: str) -> tuple[str, str]:
    branch = _config(repo, validate_run_id(run_id), "branch")
    if branch is None:
        raise GitOpsError(f"no Sorte run {run_id!r} in {repo.working_tree_dir}")
    return branch, _config(repo, run_id, "state") or "open"


def discard_run(repo_root: Path, run_id: str) -> None:
    """Forget a run entirely (worktree, branch, record): for a fresh run whose plan was refused."""
    repo = open_repo(repo_root)
    run = find_run(repo_root, run_id)
    if run is None:
        return
    _remove_worktree(repo, run.path)
    if _ref_sha(repo, f"refs/heads/{run.branch}"):
        _git(repo, "branch", "-D", "--quiet", run.branch)
    _try(repo, "config", "--local", "--remove-section", f"sorte.{run_id}")


def _remove_worktree(repo: git.Repo, path: Path) -> None:
    if path.exists() and path.resolve() in _worktrees(repo):
        _git(repo, "worktree", "remove", "--force", str(path))
    elif path.exists():
        _clear_stale_dir(path)
    _git(repo, "worktree", "prune")


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
        found = _git(
            wt, "log", "--format=%H", "--fixed-strings", f"--grep={PLAN_TRAILER}: {key}", f"{run.base_sha}..HEAD"
        )
        if found.strip():
            return found.split()[0]
    _git(wt, "add", "--all", "--", *(paths or ["."]))
    if _try(wt, "diff", "--cached", "--quiet")[0] == 0:
        return None
    message = commit_message(request, summary, run.run_id, key)
    # No hooks, no signing: the commit must not depend on the host's git configuration.
    _git(wt, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message, env=identity.env())
    return _git(wt, "rev-parse", "HEAD").strip()


def _tip(repo: git.Repo, run_id: str) -> tuple[str, str, str]:
    """(ref, state, base) of a run: its branch, or its archive ref once abandoned."""
    branch, state = _require_run(repo, run_id)
    ref = f"{ARCHIVE_PREFIX}{run_id}" if state == "abandoned" else f"refs/heads/{branch}"
    return ref, state, _config(repo, run_id, "base") or "main"


def diff(repo_root: Path, run_id: str) -> str:
    """Unified diff of the run branch against the point where it left its base."""
    repo = open_repo(repo_root)
    ref, state, base = _tip(repo, run_id)
    start = _config(repo, run_id, "baseSha") if state != "open" else None
    start = start or _git(repo, "merge-base", f"refs/heads/{base}", ref).strip()
    return _git(repo, "diff", "--no-color", "--no-ext-diff", start, ref)


# -- abandon, merge, list --------------------------------------------------------------------


def abandon(repo_root: Path, run_id: str) -> None:
    """Delete the run's worktree and branch; its tip stays under refs/sorte/abandoned/ for audit."""
    repo = open_repo(repo_root)
    branch, state = _require_run(repo, run_id)
    if state != "open":
        raise GitOpsError(f"run {run_id} is already {state}")
    _remove_worktree(repo, Path(_config(repo, run_id, "path") or ""))
    tip = _ref_sha(repo, f"refs/heads/{branch}")
    if tip:
        _git(repo, "update-ref", f"{ARCHIVE_PREFIX}{run_id}", tip)
        _git(repo, "branch", "-D", "--quiet", branch)
    _set_config(repo, run_id, state="abandoned")


def merge(repo_root: Path, run_id: str, mode: MergeMode = "ff", *, identity: GitIdentity = GitIdentity()) -> str:
    """Merge an approved run into its base (fast-forward or merge commit); returns the new base sha.

    A conflict, a fast-forward that is not possible, or a dirty checkout of the base branch is
    refused before anything changes."""
    if mode not in ("ff", "merge"):
        raise GitOpsError(f"unknown merge mode {mode!r} (ff or merge)")
    repo = open_repo(repo_root)
    branch, state = _require_run(repo, run_id)
    if state != "open":
        raise GitOpsError(f"run {run_id} is {state}; only open runs merge")
    base = _config(repo, run_id, "base") or "main"
    base_sha, tip = _ref_sha(repo, f"refs/heads/{base}"), _ref_sha(repo, f"refs/heads/{branch}")
    if not base_sha or not tip:
        raise GitOpsError(f"run {run_id}: branch {branch if not tip else base} is missing")
    if _try(repo, "merge-base", "--is-ancestor", tip, base_sha)[0] == 0:
        raise GitOpsError(f"run {run_id} has no commits that {base} lacks; nothing to merge")
    checkout = next((p for p, b in _worktrees(repo).items() if b == base), None)
    if checkout is not None and _git(git.Repo(checkout), "status", "--porcelain", "--untracked-files=no").strip():
        raise GitOpsError(f"{checkout} has {base} checked out with uncommitted changes; commit or stash them first")
    if mode == "ff":
        new = _fast_forward(repo, run_id, base, base_sha, tip, checkout)
    else:
        new = _merge_commit(repo, run_id, branch, base, base_sha, tip, checkout, identity)
    _set_config(repo, run_id, state="merged", mergedSha=new)
    _remove_worktree(repo, Path(_config(repo, run_id, "path") or ""))
    return new


def merged_sha(repo_root: Path, run_id: str) -> str | None:
    """The base sha a run was merged at, or None while it is not merged (resumed runs ask first)."""
    repo = open_repo(repo_root)
    _, state = _require_run(repo, run_id)
    return _config(repo, run_id, "mergedSha") if state == "merged" else None


def _fast_forward(repo: git.Repo, run_id: str, base: str, base_sha: str, tip: str, checkout: Path | None) -> str:
    if _try(repo, "merge-base", "--is-ancestor", base_sha, tip)[0] != 0:
        raise GitOpsError(
            f"cannot fast-forward {base} to run {run_id}: {base} has moved on since the run started "
            "(use --mode merge, or abandon and re-run)"
        )
    if checkout is not None:
        _git(git.Repo(checkout), "merge", "--quiet", "--ff-only", tip)
    else:
        _git(repo, "update-ref", f"refs/heads/{base}", tip, base_sha)
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
    status, out, errout = _try(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", base_sha, tip)
    if status != 0:
        files = [line for line in out.splitlines()[1:] if line.strip()]
        raise MergeConflict(
            f"run {run_id} conflicts with {base} in {', '.join(files) or errout.strip() or 'its files'}; nothing merged"
        )
    message = f"Merge {branch} into {base}\n\n{RUN_TRAILER}: {run_id}\n"
    if checkout is not None:
        _git(
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
        return _git(repo, "rev-parse", f"refs/heads/{base}").strip()
    tree = out.splitlines()[0].strip()
    new = _git(repo, "commit-tree", tree, "-p", base_sha, "-p", tip, "-m", message, env=identity.env()).strip()
    _git(repo, "update-ref", f"refs/heads/{base}", new, base_sha)
    return new


def list_branches(repo_root: Path) -> list[BranchInfo]:
    """Every recorded Sorte run with its state, ahead/behind counts against its base, last commit."""
    repo = open_repo(repo_root)
    status, out, _ = _try(repo, "config", "--local", "--get-regexp", r"^sorte\..*\.branch$")
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
    if not _ref_sha(repo, ref):
        return None
    behind = ahead = 0
    if _ref_sha(repo, f"refs/heads/{base}"):
        behind, ahead = (int(n) for n in _git(repo, "rev-list", "--left-right", "--count", f"{base}...{ref}").split())
    sha, date, subject = _git(repo, "log", "-1", "--format=%h%x00%cI%x00%s", ref).split("\x00", 2)
    path = Path(_config(repo, run_id, "path") or "")
    worktree = path if state == "open" and path.resolve() in _worktrees(repo) else None
    return BranchInfo(run_id, branch, state, base, ahead, behind, sha, subject, date, worktree)  # type: ignore[arg-type]
