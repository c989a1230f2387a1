"""Candidate commits built with git plumbing, straight into a repository's objects: any mode,
symlinks (absolute, relative, dangling), submodules, odd names, with no checkout and no
working-tree change. ``commit`` never touches the repository's index or HEAD."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "Hostile",
    "GIT_AUTHOR_EMAIL": "hostile@localhost",
    "GIT_COMMITTER_NAME": "Hostile",
    "GIT_COMMITTER_EMAIL": "hostile@localhost",
}


@dataclass(frozen=True)
class File:
    data: str | bytes
    mode: str = "100644"


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Gitlink:
    sha: str = "1" * 40


Entry = str | bytes | File | Link | Gitlink | None


def run(repo: Path, *args: str | bytes, stdin: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    out = subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, check=True, env={**os.environ, **(env or {})}
    )
    return out.stdout


def blob(repo: Path, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return run(repo, "hash-object", "-w", "--stdin", stdin=raw).decode().strip()


def _index_line(repo: Path, path: bytes, entry: Entry) -> bytes:
    if entry is None:
        return b"0 " + b"0" * 40 + b"\t" + path + b"\0"
    if isinstance(entry, Gitlink):
        mode, sha = "160000", entry.sha
    elif isinstance(entry, Link):
        mode, sha = "120000", blob(repo, entry.target)
    elif isinstance(entry, File):
        mode, sha = entry.mode, blob(repo, entry.data)
    else:
        mode, sha = "100644", blob(repo, entry)
    return f"{mode} {sha}\t".encode() + path + b"\0"


def commit(repo: Path, name: str, changes: dict[str | bytes, Entry], base: str = "main") -> str:
    """Branch ``name`` = ``base`` plus ``changes`` (path -> text/bytes, File, Link, Gitlink, or
    None to delete) in one commit; returns its sha."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **IDENTITY}
        run(repo, "read-tree", base, env=env)
        lines = b"".join(_index_line(repo, p.encode() if isinstance(p, str) else p, e) for p, e in changes.items())
        run(repo, "update-index", "-z", "--index-info", stdin=lines, env=env)
        tree = run(repo, "write-tree", env=env).decode().strip()
    return _commit_tree(repo, name, tree, base)


def commit_top_entry(repo: Path, name: str, raw_name: bytes, data: str | bytes, base: str = "main") -> str:
    """Branch ``name`` = ``base`` plus one top-level file whose name git's index would refuse
    (``..``, ``.git``, a name with a slash): built with ``git mktree``, as a hostile tool could."""
    listing = run(repo, "ls-tree", "-z", base).split(b"\0")
    entry = f"100644 blob {blob(repo, data)}\t".encode() + raw_name
    tree = run(repo, "mktree", "-z", stdin=b"\0".join([e for e in listing if e] + [entry]) + b"\0")
    return _commit_tree(repo, name, tree.decode().strip(), base)


def _commit_tree(repo: Path, name: str, tree: str, base: str) -> str:
    sha = run(repo, "commit-tree", tree, "-p", base, "-m", f"hostile {name}", env=IDENTITY).decode().strip()
    run(repo, "update-ref", f"refs/heads/{name}", sha)
    return sha
