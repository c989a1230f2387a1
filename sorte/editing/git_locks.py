"""Telling a git lock left by a dead process from one a live git still holds.

SIGKILL of a Sorte process does not kill the git command it was running: that child goes on,
holding `index.lock`, and renames it over the index when done. Removing its lock then starting a
`git reset` lets the orphan rename the reset's lock away ("Could not write new index file"). So a
lock is removed only once no process has it open; an orphaned git finishes within seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

WAIT_S = 30.0  # the longest an orphaned git command is given to finish
_POLL_S = 0.05
_PROC = Path("/proc")


def remove_stale(locks: Iterable[Path], wait_s: float = WAIT_S) -> list[Path]:
    """Remove the locks no live process holds, after waiting for held ones; the removed ones."""
    locks = [lock for lock in locks if lock.exists()]
    deadline = time.monotonic() + wait_s
    while locks and time.monotonic() < deadline and _held(locks):
        time.sleep(_POLL_S)
        locks = [lock for lock in locks if lock.exists()]
    if locks:
        time.sleep(_POLL_S)  # a git between closing its lock and renaming it holds no descriptor
    removed = []
    for lock in locks:
        if lock.exists():
            log.warning("git.stale_lock_removed", path=str(lock))
            lock.unlink(missing_ok=True)
            removed.append(lock)
    return removed


def _held(locks: list[Path]) -> bool:
    """Whether any process has one of ``locks`` open. Without /proc nothing can be seen, so
    every lock counts as held until the wait ends."""
    if not _PROC.is_dir():
        return True
    wanted = {str(lock.resolve()) for lock in locks}
    for fd_dir in _PROC.glob("[0-9]*/fd"):
        try:
            entries = list(os.scandir(fd_dir))
        except OSError:  # gone, or not ours to read
            continue
        for entry in entries:
            try:
                if os.readlink(entry.path) in wanted:
                    return True
            except OSError:
                continue
    return False
