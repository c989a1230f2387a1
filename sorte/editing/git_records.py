"""The git plumbing every operation on a run shares: the repository, git commands, refs, the
registered worktrees, and each run's record in the repository's config (``[sorte "<run-id>"]``)."""

from __future__ import annotations

import re
from pathlib import Path

import git

from sorte.errors import SorteError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class GitOpsError(SorteError):
    """A git operation of a run failed or was refused; nothing was changed."""


def validate_run_id(run_id: str) -> str:
    """Run ids end up in branch names, ref names, config keys and paths: safe characters only."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise GitOpsError(
            f"invalid run id {run_id!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return run_id


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


def run_git(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        return repo.git.execute(["git", *args], env=env)
    except git.GitCommandError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().replace("\n", " ")
        raise GitOpsError(f"git {args[0]} failed: {detail}") from None


def try_git(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    status, out, errout = repo.git.execute(["git", *args], env=env, with_extended_output=True, with_exceptions=False)
    return status, out, errout


def run_config(repo: git.Repo, run_id: str, key: str) -> str | None:
    status, out, _ = try_git(repo, "config", "--local", "--get", f"sorte.{run_id}.{key}")
    return out.strip() if status == 0 else None


def set_run_config(repo: git.Repo, run_id: str, **values: str) -> None:
    for key, value in values.items():
        run_git(repo, "config", "--local", f"sorte.{run_id}.{key}", value)


def ref_sha(repo: git.Repo, ref: str) -> str | None:
    status, out, _ = try_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.strip() if status == 0 else None


def resolve_base(repo: git.Repo, base: str | None = None) -> str:
    """The branch runs start from: ``base`` if given, else ``main``, else ``master``."""
    candidates = [base] if base else ["main", "master"]
    for name in candidates:
        if ref_sha(repo, f"refs/heads/{name}"):
            return name
    raise GitOpsError(f"base branch {' or '.join(candidates)} not found in {repo.working_tree_dir}")


def registered_worktrees(repo: git.Repo) -> dict[Path, str | None]:
    """Registered worktrees: path -> checked-out branch (None when detached)."""
    found: dict[Path, str | None] = {}
    path: Path | None = None
    for line in run_git(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line[9:]).resolve()
            found[path] = None
        elif line.startswith("branch ") and path is not None:
            found[path] = line[7:].removeprefix("refs/heads/")
    return found


def require_run(repo: git.Repo, run_id: str) -> tuple[str, str]:
    branch = run_config(repo, validate_run_id(run_id), "branch")
    if branch is None:
        raise GitOpsError(f"no Sorte run {run_id!r} in {repo.working_tree_dir}")
    return branch, run_config(repo, run_id, "state") or "open"
