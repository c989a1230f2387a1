"""Run the code-executing part of plan validation off the host.

Checking that an edited strategy imports and answers ``lookback()`` means running the plan's
code, so it never happens in the editor's own process. One warm validator process per host
process is started confined like the strategy worker (``sandbox.confined.spawn``, local
backend): a read-only copy of the validator, an environment holding nothing from the host, and
rlimits. As root with namespaces it also gets a new network namespace and a new root holding
only an allow-list (the host's system folders, the interpreter, a few /etc entries, four
devices) with a private, size-bounded /tmp, and runs as uid 65534: the repository, the data
dir, home folders and the host's /tmp do not exist there, and an interpreter under /tmp is
bound in on its own. It imports numpy once and forks a fresh child per job; the job's files
come over stdin and are written into the validator's own /tmp. The child arms an audit hook
(no file writes, no reads outside the interpreter and the job folder, no processes, sockets,
ctypes, frames or gc) before it imports the plan's code. See ``_validator_child.py``.

Where namespaces cannot be had (not root, or a container without CAP_SYS_ADMIN, as Sorte's own
image runs) the validator still runs, with the weaker isolation (scrubbed environment, rlimits,
the audit hook, its own scratch folder as /tmp), and says so: a structured log warning once per
process, ``isolation_warnings()`` for callers (``EditResult.warnings``, one line from
``sorte edit``). It never falls back silently.

Starting the validator costs one interpreter start and a numpy import (the first validation
of a process); later validations cost a fork.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import structlog

from sandbox.confined import NO_NAMESPACES, ConfinedProcess, scratch_dir, spawn
from sandbox.contract import SandboxLimits

log = structlog.get_logger(__name__)

CHILD = Path(__file__).with_name("_validator_child.py")
INDICATORS = Path(__file__).resolve().parent.parent / "indicators.py"
JOB_TIMEOUT_S = 20.0
START_TIMEOUT_S = 60.0
#: The validator's whole life: CPU limit of the warm process (each job's fork gets JOB_TIMEOUT_S).
LIFETIME_CPU_S = 3600.0
#: What the validator says (log, ``EditResult.warnings``, ``sorte edit``) where it has no namespaces.
WEAKER = (
    f"plan code was validated with weaker isolation, {NO_NAMESPACES}: it ran as the current user with "
    "network access and the host's file system, held back only by the audit hook (no writes, no reads "
    "outside the interpreter and the job, no processes or sockets), a scrubbed environment, rlimits and "
    "its own temp dir"
)


class ValidatorError(RuntimeError):
    """The sandboxed validator could not run (not a verdict on the plan)."""


class _Validator:
    """One sandboxed validator process, started on first use and restarted if it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: ConfinedProcess | None = None
        self._base: Path | None = None
        self._ids = itertools.count(1)
        self._owner = os.getpid()
        #: What the running validator has (or, once stopped, last had): filled in by _start.
        self.isolation: dict[str, bool] = {}
        #: What isolation the running validator lacks, one sentence each (empty when complete).
        self.warnings: list[str] = []

    def _forget_if_forked(self) -> None:
        """A forked copy of this process must not share (or kill) its parent's validator."""
        if self._owner != os.getpid():
            self._proc, self._base, self._owner = None, None, os.getpid()
            self._lock = threading.Lock()

    def run(self, files: dict[str, str], checks: list[dict], timeout_s: float = JOB_TIMEOUT_S) -> dict | None:
        """The first failing check ({"tag", "detail"}) or None; raises ValidatorError if it cannot run."""
        self._forget_if_forked()
        with self._lock:
            for attempt in (1, 2):
                proc = self._ensure()
                job_id = next(self._ids)
                job = {"id": job_id, "files": files, "checks": checks, "timeout_s": timeout_s}
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(json.dumps(job).encode() + b"\n")
                    proc.stdin.flush()
                    answer = self._read(proc, timeout_s + 10)
                except (OSError, ValidatorError) as exc:
                    self._stop()
                    if attempt == 2:
                        raise ValidatorError(f"the sandboxed validator failed: {exc}") from None
                    continue
                if answer.get("id") != job_id or "error" in answer:
                    self._stop()
                    raise ValidatorError(f"the sandboxed validator failed: {answer.get('error', 'out of step')}")
                return answer.get("failure")
        raise AssertionError("unreachable")

    def _read(self, proc: subprocess.Popen[bytes], timeout_s: float) -> dict:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ValidatorError(f"no answer within {timeout_s:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ValidatorError(f"it exited ({proc.poll()}): {self._stderr_tail()}")
            buf += chunk
        try:
            answer = json.loads(buf)
        except ValueError:
            raise ValidatorError("malformed answer") from None
        if not isinstance(answer, dict):
            raise ValidatorError("malformed answer")
        return answer

    def _stderr_tail(self) -> str:
        if self._base is None:
            return ""
        with contextlib.suppress(OSError):
            return (self._base / "stderr").read_text(errors="replace")[-500:].strip()
        return ""

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.proc.poll() is None:
            return self._proc.proc
        self._stop()
        try:
            proc = self._start().proc
            ready = self._read(proc, START_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError, ValidatorError) as exc:
            self._stop()
            raise ValidatorError(f"the sandboxed validator did not start: {exc}") from None
        if not ready.get("ready"):
            self._stop()
            raise ValidatorError("the sandboxed validator did not start")
        return proc

    def _start(self) -> ConfinedProcess:
        """The validator, confined like the strategy worker (``sandbox.confined``, local backend)."""
        base = scratch_dir("validator")
        self._base = base
        box = base / "box"
        (box / "sorte").mkdir(parents=True)
        # The validator and the one project module strategies may import: the validator needs
        # nothing else of the checkout (spawn copies the box read-only into the confinement).
        shutil.copy(CHILD, box / CHILD.name)
        (box / "sorte" / "__init__.py").write_text("")
        shutil.copy(INDICATORS, box / "sorte" / "indicators.py")
        limits = SandboxLimits(timeout_s=LIFETIME_CPU_S)
        argv = [sys.executable, "-I", "-B", f"{{box}}/{CHILD.name}"]
        with (base / "stderr").open("wb") as err:
            self._proc = spawn(argv, box, backend="local", limits=limits, stderr=err.fileno())
        confined = not self._proc.warnings
        self.isolation = {"network": confined, "uid_dropped": confined, "private_tmp": confined, "own_root": confined}
        # The local backend's only warning is the missing namespaces: said in the validator's words.
        self.warnings = [WEAKER] if self._proc.warnings else []
        _warn_once(self.warnings)
        return self._proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # the whole process group, and the confinement's scratch folder
        base, self._base = self._base, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    def close(self) -> None:
        self._forget_if_forked()
        with self._lock:
            self._stop()
            self.isolation, self.warnings = {}, []


_warned: set[str] = set()


def _warn_once(warnings: list[str]) -> None:
    """Weaker isolation is logged once per process (a restarted validator says nothing new)."""
    for warning in warnings:
        if warning not in _warned:
            _warned.add(warning)
            log.warning("editing.validator.weaker_isolation", missing=warning)


_VALIDATOR = _Validator()
atexit.register(_VALIDATOR.close)


def run_checks(files: dict[str, str], checks: list[dict], timeout_s: float = JOB_TIMEOUT_S) -> dict | None:
    """Import the given strategies/ files in the sandboxed validator and run ``checks``.

    ``files``: repo-relative path (under strategies/) -> text. Each check is
    ``{"tag": any, "stem": module, "params": {...}, "stage": name or None}``: import
    ``strategies/<stem>.py`` and call ``lookback(params)``. Returns the first failure as
    ``{"tag", "detail"}`` (tag None when the failure is not one check's), or None."""
    return _VALIDATOR.run(files, checks, timeout_s)


def isolation_warnings() -> list[str]:
    """What isolation the validator of this process lacks (empty when it has it all, or has not run)."""
    return list(_VALIDATOR.warnings)


def shutdown() -> None:
    """Stop the warm validator (tests; it also stops when this process exits)."""
    _VALIDATOR.close()
