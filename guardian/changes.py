"""What a candidate changed, read straight from git's objects (never from an exported tree).

Modes, object types and sizes come from ``git diff-tree`` and ``git cat-file``, so a symlink,
an executable bit or a submodule is seen as git stores it, whatever a checkout or an archive
would make of it. Paths stay git's bytes; :func:`show_path` is the escaped form for messages.
Only plumbing commands run (no porcelain configuration, no attributes, no external diff or
textconv driver), with no ``GIT_*`` variable of the caller.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from os import PathLike

from sorte.editing.policy import NEW_TEST_FILE, STRATEGY_FILE
from sorte.errors import SorteError

REGULAR = "100644"
EXECUTABLE = "100755"
SYMLINK = "120000"
GITLINK = "160000"
FILE_MODES = (REGULAR, EXECUTABLE)

#: The only files a candidate may modify (existing) or add: modules directly in strategies/ ...
STRATEGY = re.compile(STRATEGY_FILE.pattern.encode())
#: ... and new pytest files directly in tests/strategies/ (never conftest.py, never __init__.py).
#: The editor's path policy owns both patterns, so what it writes is exactly what passes here.
NEW_TEST = re.compile(NEW_TEST_FILE.pattern.encode())

GIT_TIMEOUT_S = 120


class GuardianError(SorteError):
    """A validation that cannot start: unknown branch or ref, not a repository, unreadable trees."""


@dataclass(frozen=True)
class Change:
    """One path that differs between the merge base and the candidate (``git diff-tree --raw``)."""

    raw: bytes  # the path as git stores it
    status: str  # A added, M modified (content or mode), D deleted, T type changed
    old_mode: str  # "000000" when added
    new_mode: str  # "000000" when deleted
    old_sha: str
    new_sha: str
    size: int | None = None  # the new blob's size; None when deleted, a submodule or missing

    @property
    def path(self) -> str:
        return show_path(self.raw)

    def is_file(self) -> bool:
        """A regular blob (executable or not) on the candidate's side."""
        return self.status != "D" and self.new_mode in FILE_MODES


def show_path(raw: bytes) -> str:
    """``raw`` as readable text: invalid UTF-8 and control characters escaped, so a file name
    can neither break a message into lines nor hide as something else."""
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def is_strategy(raw: bytes) -> bool:
    return STRATEGY.fullmatch(raw) is not None


def is_new_test(raw: bytes) -> bool:
    return NEW_TEST.fullmatch(raw) is not None


def safe_parts(raw: bytes) -> tuple[str, ...] | None:
    """The path's components if it can be written under a folder without leaving it, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    parts = tuple(text.split("/"))
    for part in parts:
        # Control characters would reach tool reports and messages unescaped.
        if part in ("", ".", "..") or part.lower() == ".git" or not part.isprintable() or len(part.encode()) > 255:
            return None
    return parts if len(raw) <= 1024 else None


def git(git_dir: str | PathLike[str], *args: str, stdin: bytes | None = None) -> bytes:
    """Run a git plumbing command on the repository at ``git_dir``; GuardianError on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    argv = ["git", f"--git-dir={git_dir}", "-c", "core.quotePath=false", *args]
    try:
        proc = subprocess.run(  # noqa: S603 - fixed git command, no shell
            argv, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuardianError(f"git {args[0]} could not run: {exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GuardianError(f"git {args[0]} failed: {tail[-1] if tail else f'exit code {proc.returncode}'}")
    return proc.stdout


def read_changes(git_dir: str | PathLike[str], base: str, candidate: str) -> list[Change]:
    """Every path that differs between the trees of ``base`` and ``candidate``, with blob sizes."""
    out = git(
        git_dir, "diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", "--ignore-submodules=none", base, candidate
    )
    fields = out.split(b"\0")
    changes: list[Change] = []
    for head, raw in zip(fields[0::2], fields[1::2], strict=False):
        if not head.startswith(b":"):
            continue
        old_mode, new_mode, old_sha, new_sha, status = head[1:].decode("ascii").split(" ")
        changes.append(Change(raw, status[:1], old_mode, new_mode, old_sha, new_sha))
    sizes = blob_sizes(git_dir, (c.new_sha for c in changes if c.status != "D" and c.new_mode != GITLINK))
    return [replace(c, size=sizes.get(c.new_sha)) for c in changes]


def blob_sizes(git_dir: str | PathLike[str], shas: Iterable[str]) -> dict[str, int]:
    """Size of each blob among ``shas`` (missing objects and non-blobs are left out)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = git(git_dir, "cat-file", "--batch-check", stdin="".join(s + "\n" for s in wanted).encode())
    sizes: dict[str, int] = {}
    for line in out.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return sizes


def read_blobs(git_dir: str | PathLike[str], shas: Iterable[str]) -> dict[str, bytes]:
    """The content of each blob among ``shas`` (callers bound the sizes first)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = git(git_dir, "cat-file", "--batch", stdin="".join(s + "\n" for s in wanted).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii", "replace").split()
        pos = end + 1
        if len(header) != 3:  # "<sha> missing"
            continue
        size = int(header[2])
        if header[1] == "blob":
            blobs[header[0]] = out[pos : pos + size]
        pos += size + 1  # the content, then a newline
    return blobs


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob, tree, commit (a submodule)
    sha: str
    size: int | None
    raw: bytes


def list_tree(git_dir: str | PathLike[str], treeish: str) -> list[TreeEntry]:
    """Every entry of ``treeish``, recursively, with blob sizes."""
    out = git(git_dir, "ls-tree", "-r", "-z", "-l", "--full-tree", treeish)
    entries: list[TreeEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw = record.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        entries.append(TreeEntry(mode, kind, sha, int(size) if size.isdigit() else None, raw))
    return entries
