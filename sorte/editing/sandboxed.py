"""Run the code-executing part of plan validation off the host.

Checking that an edited strategy imports and answers ``lookback()`` means running the plan's
code, so it never happens in the editor's own process. One warm validator process per host
process is started inside the project's local sandbox machinery (``sandbox.local_backend``:
a copy of the validator in a private temp dir, a scrubbed environment, rlimits, and as root
a new network and mount namespace with a private /tmp and uid 65534). It imports numpy once
and forks a fresh child per job; the child arms an audit hook (no file writes, no reads
outside the interpreter and the job folder, no processes, sockets or ctypes) before it
imports the plan's code. See ``_validator_child.py`` for that side.

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
import tempfile
import threading
import time
from pathlib import Path

from sandbox.local_backend import (
    SANDBOX_UID,
    can_unshare_network,
    confined_preexec,
    interpreter_under_tmp,
    read_only_tree,
)
from sandbox.models import SANDBOX_OUTPUT_DIR, SANDBOX_TMP, SandboxLimits, fixed_env

CHILD = Path(__file__).with_name("_validator_child.py")
INDICATORS = Path(__file__).resolve().parent.parent / "indicators.py"
JOB_TIMEOUT_S = 20.0
START_TIMEOUT_S = 60.0
#: The validator's whole life: CPU limit of the warm process (each job's fork gets JOB_TIMEOUT_S).
LIFETIME_CPU_S = 3600.0
#: Variables the validator sees: nothing from the host environment (no secrets, no proxies).
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class ValidatorError(RuntimeError):
    """The sandboxed validator could not run (not a verdict on the plan)."""


class _Validator:
    """One sandboxed validator process, started on first use and restarted if it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None
        self._ids = itertools.count(1)
        self._owner = os.getpid()
        self.isolation: dict[str, bool] = {}

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
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        self._proc = self._start()
        try:
            ready = self._read(self._proc, START_TIMEOUT_S)
        except ValidatorError as exc:
            self._stop()
            raise ValidatorError(f"the sandboxed validator did not start: {exc}") from None
        if not ready.get("ready"):
            self._stop()
            raise ValidatorError("the sandboxed validator did not start")
        return self._proc

    def _start(self) -> subprocess.Popen[bytes]:
        """Popen of the validator under the local sandbox's protections (see LocalSandbox.run)."""
        limits = SandboxLimits(timeout_s=LIFETIME_CPU_S, env=CHILD_ENV)
        is_root = os.geteuid() == 0
        unshare_net = can_unshare_network()
        drop = is_root and unshare_net
        base = Path(tempfile.mkdtemp(prefix="sorte-validator-"))
        self._base = base
        os.chmod(base, 0o755)
        tmp = base / "tmp"
        work = tmp / "workspace"
        (work / "sorte").mkdir(parents=True)
        os.chmod(tmp, 0o700)
        if drop:
            os.chown(tmp, SANDBOX_UID, SANDBOX_UID)
        # The validator and the one project module strategies may import, copied: the
        # validator needs nothing else of the checkout, and the copy is read-only.
        shutil.copy(CHILD, work / CHILD.name)
        (work / "sorte" / "__init__.py").write_text("")
        shutil.copy(INDICATORS, work / "sorte" / "indicators.py")
        read_only_tree(work)
        private = unshare_net and not interpreter_under_tmp()
        if private:
            env = fixed_env(f"{SANDBOX_TMP}/workspace", SANDBOX_TMP, SANDBOX_OUTPUT_DIR, [], limits.env)
            script = f"{SANDBOX_TMP}/workspace/{CHILD.name}"
        else:
            env = fixed_env(str(work), str(tmp), str(tmp), [], limits.env)
            script = str(work / CHILD.name)
        staging = base / "staging"
        staging.mkdir()
        preexec = confined_preexec(limits, unshare_net, drop, work, staging, tmp if private else None)
        self.isolation = {"network": unshare_net, "uid_dropped": drop, "private_tmp": private}
        with (base / "stderr").open("wb") as err:
            return subprocess.Popen(  # noqa: S603 - the sandbox's purpose
                [sys.executable, "-I", "-B", script],
                cwd=work,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                preexec_fn=preexec,  # noqa: PLW1509
                close_fds=True,
            )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        base, self._base = self._base, None
        if base is not None:
            for dirpath, _dirs, _files in os.walk(base):
                with contextlib.suppress(OSError):
                    os.chmod(dirpath, 0o755)
            shutil.rmtree(base, ignore_errors=True)

    def close(self) -> None:
        self._forget_if_forked()
        with self._lock:
            self._stop()


_VALIDATOR = _Validator()
atexit.register(_VALIDATOR.close)


def run_checks(files: dict[str, str], checks: list[dict], timeout_s: float = JOB_TIMEOUT_S) -> dict | None:
    """Import the given strategies/ files in the sandboxed validator and run ``checks``.

    ``files``: repo-relative path (under strategies/) -> text. Each check is
    ``{"tag": any, "stem": module, "params": {...}, "stage": name or None}``: import
    ``strategies/<stem>.py`` and call ``lookback(params)``. Returns the first failure as
    ``{"tag", "detail"}`` (tag None when the failure is not one check's), or None."""
    return _VALIDATOR.run(files, checks, timeout_s)


def shutdown() -> None:
    """Stop the warm validator (tests; it also stops when this process exits)."""
    _VALIDATOR.close()
