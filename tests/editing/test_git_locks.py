"""Locks of a dead git are removed; a lock a live (orphaned) git still holds is left to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sorte.editing import git_locks

# Stands in for a git whose parent was killed: it holds the lock open, then renames it into place.
ORPHAN = """
import os, sys, time
lock, target = sys.argv[1], sys.argv[2]
fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
os.write(fd, b"written by the orphan")
os.close(fd)
os.rename(lock, target)
"""


def _orphan(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    args = [str(tmp_path / "index.lock"), str(tmp_path / "index"), str(seconds)]
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_lock_nobody_holds_is_removed(tmp_path):
    lock = tmp_path / "index.lock"
    lock.write_text("")
    assert git_locks.remove_stale([lock, tmp_path / "HEAD.lock"]) == [lock]
    assert not lock.exists()


def test_a_lock_a_live_git_holds_is_left_for_it_to_finish(tmp_path):
    proc = _orphan(tmp_path, 0.5)
    assert git_locks.remove_stale([tmp_path / "index.lock"], wait_s=20) == []
    assert proc.wait(timeout=10) == 0, "the orphan's rename found its lock"
    assert (tmp_path / "index").read_text() == "written by the orphan"


def test_a_lock_held_past_the_wait_is_removed(tmp_path):
    proc = _orphan(tmp_path, 30)
    try:
        assert git_locks.remove_stale([tmp_path / "index.lock"], wait_s=0.3) == [tmp_path / "index.lock"]
    finally:
        proc.kill()
        proc.wait()
