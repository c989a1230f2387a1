"""The trees a validation looks at, built from git objects in a private temporary folder.

Nothing of the candidate's tree is exported as such. The sandboxed gates see:

* ``baseline``: the trusted baseline commit's files (regular files only: symlinks and
  submodules are never materialised);
* ``candidate``: the baseline with the candidate's changed ``strategies/*.py`` laid over it,
  so the protected tests and the benchmark harness are the baseline's and the candidate's
  strategies are their inputs;
* ``candidate_tests``: ``candidate`` plus the new ``tests/strategies/test_*.py`` files the
  candidate added, for their own separate run (None when it added none);
* ``scan``: every changed regular file under ``scan/tree/`` and the guardian's own Semgrep
  rules at ``scan/rules.yml``, for Bandit and Semgrep.

What changed (paths, modes, types, sizes) is read from git by :mod:`guardian.changes`; a
crash leaves at most the temporary folder, and no tree holds ``.git``.
"""

from __future__ import annotations

import compileall
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import git
import structlog

from guardian.changes import (
    FILE_MODES,
    Change,
    GuardianError,
    TreeEntry,
    blob_sizes,
    is_new_test,
    is_strategy,
    list_tree,
    read_blobs,
    read_changes,
    safe_parts,
)

__all__ = ["ChangeSet", "GuardianError", "Ref", "Workspace", "export_tree", "inspect_candidate", "prepare"]

log = structlog.get_logger(__name__)

NEW_TESTS_DIR = "tests/strategies/"
#: A strategy or a test of more than 1 MiB is not source anyone reviews: it is neither read
#: nor laid over the baseline (the integrity gate fails it by name).
MAX_FILE_BYTES = 1 << 20
#: Bounds on what one validation reads of a candidate (a branch may add a million files).
MAX_READ_FILES = 2000
MAX_READ_BYTES = 64 << 20
#: A trusted tree's file larger than this is left out of the export (and logged).
MAX_EXPORT_FILE_BYTES = 256 << 20
EXPORT_BATCH_BYTES = 64 << 20
SCAN_TREE = "tree"
SCAN_RULES = "rules.yml"


@dataclass(frozen=True)
class Ref:
    label: str  # what the user named (branch, run id, ref)
    sha: str

    def short(self) -> str:
        return f"{self.label}@{self.sha[:10]}"


@dataclass
class ChangeSet:
    """The candidate's changes since the merge base, and the content of its changed files."""

    base_sha: str  # the merge base the candidate is compared with
    changes: list[Change]
    blobs: dict[str, bytes] = field(default_factory=dict)  # sha -> content, for files read

    def strategy_files(self) -> dict[str, bytes]:
        """Changed ``strategies/*.py`` files: what is laid over the baseline as input."""
        return {c.path: self.blobs[c.new_sha] for c in self._readable() if is_strategy(c.raw)}

    def new_test_files(self) -> dict[str, bytes]:
        """Added ``tests/strategies/test_*.py`` files: run on their own, they can only add failures."""
        return {c.path: self.blobs[c.new_sha] for c in self._readable() if c.status == "A" and is_new_test(c.raw)}

    def sources(self) -> dict[str, str]:
        """The code the editor's policy judges (strategies and new tests), as text."""
        return {path: _text(data) for path, data in {**self.strategy_files(), **self.new_test_files()}.items()}

    def texts(self) -> dict[str, tuple[str | None, str]]:
        """(old text or None, new text) of every changed regular file that was read: for the secret scan."""
        out: dict[str, tuple[str | None, str]] = {}
        for c in self._readable():
            old = self.blobs.get(c.old_sha) if c.old_mode in FILE_MODES else None
            out[c.path] = (None if old is None else _text(old), _text(self.blobs[c.new_sha]))
        return out

    def scan_files(self) -> dict[str, bytes]:
        """Changed regular files that can be written safely for Bandit and Semgrep."""
        return {"/".join(parts): self.blobs[c.new_sha] for c in self._readable() if (parts := safe_parts(c.raw))}

    def unscanned(self) -> dict[str, str]:
        """Changed regular files some scanner cannot see, and why: every one fails the security gate."""
        out: dict[str, str] = {}
        for c in self.changes:
            if not c.is_file():
                continue
            if c.new_sha not in self.blobs:
                size = "unknown size" if c.size is None else f"{c.size} bytes"
                out[c.path] = f"not read ({size}; at most {MAX_FILE_BYTES} bytes per file, {MAX_READ_FILES} files)"
            elif safe_parts(c.raw) is None:
                out[c.path] = "its name cannot be written safely for Bandit and Semgrep"
        return out

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.changes]

    def _readable(self) -> list[Change]:
        return [c for c in self.changes if c.is_file() and c.new_sha in self.blobs]


@dataclass
class Workspace:
    root: Path
    baseline: Path
    candidate: Path  # baseline + the candidate's strategies
    candidate_tests: Path | None  # candidate + its new tests; None when it added none
    scan: Path  # changed files under scan/tree/, the guardian's rules at scan/rules.yml
    change_set: ChangeSet

    @property
    def changes(self) -> list[Change]:
        return self.change_set.changes

    @property
    def changed(self) -> list[str]:
        return self.change_set.paths

    @property
    def added_tests(self) -> list[str]:
        return sorted(self.change_set.new_test_files())

    @property
    def scanned(self) -> list[str]:
        """Files under ``scan/tree/`` (relative to it)."""
        return sorted(self.change_set.scan_files())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


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
    """The regular files of commit ``sha`` under ``dest``, readable by the sandbox's unprivileged
    user. Symlinks, submodules and unsafe names are never materialised; only trusted commits
    are exported this way (a candidate's files reach a tree one by one, see :func:`prepare`)."""
    entries = [e for e in list_tree(repo.git_dir, sha) if e.kind == "blob" and e.mode in FILE_MODES]
    skipped = [e.raw for e in entries if safe_parts(e.raw) is None or (e.size or 0) > MAX_EXPORT_FILE_BYTES]
    if skipped:
        log.warning("guardian.export_skipped", commit=sha[:12], files=len(skipped))
    entries = [e for e in entries if e.raw not in skipped]
    _mkdir(dest)
    for batch in _batches(entries):
        blobs = read_blobs(repo.git_dir, (e.sha for e in batch))
        for e in batch:
            mode = 0o644 if e.mode == "100644" else 0o755
            _write(dest, "/".join(safe_parts(e.raw) or ()), blobs.get(e.sha, b""), mode)
    # Byte-compiling executes nothing, and spares every sandboxed run (which may not write
    # .pyc files to the read-only tree) from compiling the same sources again.
    compileall.compile_dir(dest, quiet=2, workers=0)
    return dest


def _batches(entries: list[TreeEntry]) -> list[list[TreeEntry]]:
    """``entries`` cut into runs of at most EXPORT_BATCH_BYTES of content (bounded memory)."""
    batches: list[list[TreeEntry]] = [[]]
    size = 0
    for e in entries:
        if batches[-1] and size + (e.size or 0) > EXPORT_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(e)
        size += e.size or 0
    return [b for b in batches if b]


def merge_base(repo: git.Repo, candidate: Ref, baseline: Ref) -> str:
    status, out, _ = repo.git.execute(
        ["git", "merge-base", baseline.sha, candidate.sha], with_extended_output=True, with_exceptions=False
    )
    return out.strip() if status == 0 and out.strip() else baseline.sha


def inspect_candidate(repo: git.Repo, candidate: Ref, baseline: Ref) -> ChangeSet:
    """What the candidate changed since its merge base with ``baseline``, and the content of the
    changed files (each at most MAX_FILE_BYTES; nothing is written, no candidate code runs)."""
    base_sha = merge_base(repo, candidate, baseline)
    changes = read_changes(repo.git_dir, base_sha, candidate.sha)
    wanted: list[str] = []
    total = 0
    for c in changes:
        fits = c.size is not None and c.size <= MAX_FILE_BYTES and total + c.size <= MAX_READ_BYTES
        if c.is_file() and fits and len(wanted) < MAX_READ_FILES:
            wanted.append(c.new_sha)
            total += c.size or 0
    # The merge base's side of modified files: the secret scan looks at added lines only.
    olds = [c.old_sha for c in changes if c.status != "A" and c.old_mode in FILE_MODES and c.new_sha in wanted]
    old_sizes = blob_sizes(repo.git_dir, olds)
    wanted += [sha for sha in olds if old_sizes.get(sha, MAX_FILE_BYTES + 1) <= MAX_FILE_BYTES]
    return ChangeSet(base_sha, changes, read_blobs(repo.git_dir, wanted))


def prepare(repo: git.Repo, candidate: Ref, baseline: Ref, rules: Path | None = None) -> Workspace:
    """Read the candidate's changes and build the trees the gates need (see the module doc)."""
    change_set = inspect_candidate(repo, candidate, baseline)
    root = Path(tempfile.mkdtemp(prefix="sorte-validate-"))
    os.chmod(root, 0o755)
    try:
        base_dir = export_tree(repo, baseline.sha, root / "baseline")
        cand_dir = _compose(base_dir, root / "candidate", change_set.strategy_files())
        tests = change_set.new_test_files()
        tests_dir = _compose(cand_dir, root / "candidate-tests", tests) if tests else None
        scan_dir = _scan_tree(root / "scan", change_set.scan_files(), rules)
    except GuardianError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise GuardianError(f"could not build the validation trees under {root}: {exc.strerror or exc}") from None
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Workspace(root, base_dir, cand_dir, tests_dir, scan_dir, change_set)


def _compose(source: Path, dest: Path, files: dict[str, bytes]) -> Path:
    """A copy of ``source`` with ``files`` (repo-relative, already checked names) laid over it."""
    shutil.copytree(source, dest, symlinks=True)
    for rel, data in files.items():
        path = dest / rel
        # The baseline's byte code of a replaced module could match the new source's size and
        # mtime and be imported instead of it: drop it (the sandbox compiles in memory).
        for stale in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            stale.unlink()
        path.unlink(missing_ok=True)
        _write(dest, rel, data, 0o644)
    return dest


def _scan_tree(dest: Path, files: dict[str, bytes], rules: Path | None) -> Path:
    from guardian.gates.security import RULES

    _mkdir(dest / SCAN_TREE)
    for rel, data in files.items():
        _write(dest / SCAN_TREE, rel, data, 0o644)
    _write(dest, SCAN_RULES, Path(rules or RULES).read_bytes(), 0o644)
    return dest


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)


def _write(root: Path, rel: str, data: bytes, mode: int) -> None:
    """Write ``root/rel`` as a new file; its folders are created readable by everyone, and no
    symlink is ever followed (the trees hold none, and O_NOFOLLOW makes sure)."""
    path = root / rel
    parent = root
    for part in Path(rel).parts[:-1]:
        parent = parent / part
        if not parent.is_dir():
            parent.mkdir()
            os.chmod(parent, 0o755)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)  # the umask must not hide the file from the sandbox's user
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
