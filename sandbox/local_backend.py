"""Local fallback backend: an rlimited subprocess for machines without Docker.

Weaker than Docker, and it says so in every result: the command runs in a new session with
RLIMIT_AS / RLIMIT_NPROC / RLIMIT_CPU / RLIMIT_FSIZE, a scrubbed environment and its cwd in a
read-only copy of the worktree inside a private temp dir; the whole process group is killed at
the timeout. As root it also drops to uid 65534 and cuts the network with a new network
namespace (the ``unshare -n`` syscall); without root the network stays reachable and
``network_isolated`` is False.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from sandbox.contract import (
    OUT_TOKEN,
    SANDBOX_OUTPUT_DIR,
    SANDBOX_TMP,
    SandboxLimits,
    SandboxResult,
    coerce_limits,
    fixed_env,
    read_outputs,
)

log = structlog.get_logger(__name__)

SANDBOX_UID = 65534
#: Where the worktree copy appears when the local backend has a private mount namespace.
SANDBOX_WORKTREE_LOCAL = f"{SANDBOX_TMP}/workspace"
_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_MOVE = 8192
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache")


@functools.cache
def can_unshare_network() -> bool:
    """True when this process may create a network namespace (``unshare -n`` works)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def read_only_tree(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(0o444 | (0o111 if p.stat().st_mode & stat.S_IXUSR else 0))
        os.chmod(dirpath, 0o555)
        del dirnames  # walked top-down; directories are chmod'ed when visited


def _blocked_ancestor(path: str) -> str | None:
    """The highest ancestor of ``path`` that uid 65534 cannot traverse (None when all can be)."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        anc = str(Path(*parts[:i]))
        try:
            if not os.stat(anc).st_mode & stat.S_IXOTH:
                return anc
        except OSError:
            return None
    return None


def _shared_tmp_arg(arg: str, out: Path) -> str:
    """``{out}`` and the container's output dir become the scratch output dir, in one pass:
    replacing one after the other would rewrite the ``/tmp/out`` that ends the first result."""
    return re.sub(f"{re.escape(OUT_TOKEN)}|{re.escape(SANDBOX_OUTPUT_DIR)}", lambda _m: str(out), arg)


def interpreter_under_tmp() -> bool:
    tmp = Path("/tmp").resolve()
    return any(tmp in Path(p).resolve().parents for p in (sys.prefix, sys.base_prefix))


def _python_mounts() -> list[tuple[str, str]]:
    """(prefix, blocked ancestor) for interpreter trees that uid 65534 could not reach (e.g. under /root)."""
    found: list[tuple[str, str]] = []
    for prefix in {str(Path(sys.prefix).resolve()), str(Path(sys.base_prefix).resolve())}:
        anc = _blocked_ancestor(prefix)
        if anc is not None:
            found.append((prefix, anc))
    return found


def _mount(libc: ctypes.CDLL, src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = [None if v is None else v.encode() for v in (src, target, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        os._exit(122)


def confined_preexec(
    limits: SandboxLimits, unshare_net: bool, drop: bool, work: Path, staging: Path, private_tmp: Path | None
):
    """The pre-exec hook of this backend's isolation: rlimits and a new session, and with
    ``unshare_net`` a new network and mount namespace with ``work`` read-only (``drop``: uid
    65534)."""
    return _make_preexec(
        limits,
        unshare_net,
        SANDBOX_UID if drop else None,
        read_only=str(work) if unshare_net else None,
        staging=str(staging),
        python_mounts=_python_mounts() if drop else [],
        private_tmp=str(private_tmp) if private_tmp else None,
    )


def _make_preexec(
    limits: SandboxLimits,
    unshare_net: bool,
    drop_to: int | None,
    read_only: str | None = None,
    staging: str | None = None,
    python_mounts: list[tuple[str, str]] | None = None,
    private_tmp: str | None = None,
):
    mem = limits.memory_bytes
    nproc = limits.pids
    cpu = max(1, int(limits.timeout_s * limits.cpus) + 1)
    fsize = limits.max_outputs_bytes + limits.tmpfs_bytes

    def preexec() -> None:  # runs in the child between fork and exec
        os.setsid()
        if unshare_net:
            libc = ctypes.CDLL(None, use_errno=True)
            flags = _CLONE_NEWNET | (_CLONE_NEWNS if read_only else 0)
            if libc.unshare(flags) != 0:
                os._exit(121)
            if read_only:
                # Private mount namespace: the worktree copy becomes a read-only bind mount, and
                # interpreter trees hidden from uid 65534 (under /root) are re-exposed read-only.
                _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE, None)
                _mount(libc, read_only, read_only, None, _MS_BIND, None)
                _mount(libc, None, read_only, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
                for i, (prefix, anc) in enumerate(python_mounts or []):
                    stage = f"{staging}/{i}"
                    os.makedirs(stage, exist_ok=True)
                    _mount(libc, prefix, stage, None, _MS_BIND | _MS_REC, None)
                    _mount(libc, "tmpfs", anc, "tmpfs", 0, "mode=755,size=1m")
                    os.makedirs(prefix, exist_ok=True)
                    _mount(libc, stage, prefix, None, _MS_MOVE, None)
                    _mount(libc, None, prefix, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_REC, None)
                if private_tmp:
                    # The private scratch dir (holding the read-only worktree) becomes /tmp.
                    _mount(libc, private_tmp, "/tmp", None, _MS_BIND | _MS_REC, None)
                    os.chdir(SANDBOX_WORKTREE_LOCAL)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_to is not None:
            os.setgroups([])
            os.setgid(drop_to)
            os.setuid(drop_to)

    return preexec


def _kill_group(pgid: int) -> None:
    for _ in range(20):  # a fork bomb may keep spawning: kill until the group is empty
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.02)


def _read_stream(path: Path, limit: int) -> tuple[str, bool]:
    """The first ``limit`` bytes of a captured stream as text, and whether the rest was cut."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        data = fh.read(limit)
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text += f"\n[... truncated {size - limit} bytes]"
    return text, size > limit


class LocalSandbox:
    """Runs commands as rlimited subprocesses (the fallback when no Docker engine answers)."""

    name = "local"

    def __init__(self) -> None:
        self._active: set[int] = set()
        self._active_lock = threading.Lock()
        self._cancelled = threading.Event()

    def cancel_all(self) -> None:
        """Kill this instance's running process groups; later runs return at once as cancelled."""
        self._cancelled.set()
        with self._active_lock:
            pids = list(self._active)
        for pid in pids:
            _kill_group(pid)

    def run(
        self, command: list[str], worktree: Path, limits: SandboxLimits | dict[str, Any] | None = None
    ) -> SandboxResult:
        limits = coerce_limits(limits)
        worktree = Path(worktree).resolve()
        if not worktree.is_dir():
            raise FileNotFoundError(f"worktree {worktree} is not a directory")
        if self._cancelled.is_set():
            return SandboxResult(backend=self.name, exit_code=-9, cancelled=True)
        warnings: list[str] = []
        is_root = os.geteuid() == 0
        unshare_net = can_unshare_network()
        if not unshare_net:
            warnings.append("network not isolated: unshare -n is not available (needs root)")
        drop = is_root and unshare_net  # uid 65534 needs the mount namespace to reach the interpreter
        if not drop:
            warnings.append("runs as the current user: the worktree copy is read-only by mode only")

        base = Path(tempfile.mkdtemp(prefix="sorte-sandbox-local-"))
        try:
            os.chmod(base, 0o755)
            tmp = base / "tmp"
            out = tmp / "out"
            out.mkdir(parents=True)
            for p in (tmp, out):
                os.chmod(p, 0o700)
                if is_root and unshare_net:
                    os.chown(p, SANDBOX_UID, SANDBOX_UID)
            work = tmp / "workspace"
            shutil.copytree(worktree, work, symlinks=True, ignore=_COPY_IGNORE)
            read_only_tree(work)

            venv_bin = [str(Path(sys.prefix) / "bin")]
            # Replacing /tmp would hide an interpreter that lives under it (a checkout in /tmp):
            # then the sandbox keeps the real /tmp and uses its private scratch dir by path.
            private = unshare_net and not interpreter_under_tmp()
            if unshare_net and not private:
                warnings.append("/tmp is shared: the interpreter lives under /tmp")
            if private:  # private mount namespace: the same paths as in a container
                env = fixed_env(SANDBOX_WORKTREE_LOCAL, SANDBOX_TMP, SANDBOX_OUTPUT_DIR, venv_bin, limits.env)
                command = [a.replace(OUT_TOKEN, SANDBOX_OUTPUT_DIR) for a in command]
            else:
                env = fixed_env(str(work), str(tmp), str(out), venv_bin, limits.env)
                command = [_shared_tmp_arg(a, out) for a in command]
            staging = base / "staging"
            staging.mkdir()
            preexec = confined_preexec(limits, unshare_net, drop, work, staging, tmp if private else None)
            start = time.monotonic()
            timed_out = False
            # Streams go to files (bounded by RLIMIT_FSIZE), not pipes held in memory.
            with (base / "stdout").open("wb") as fout, (base / "stderr").open("wb") as ferr:
                proc = subprocess.Popen(  # noqa: S603 - the sandbox's purpose
                    list(command),
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=fout,
                    stderr=ferr,
                    preexec_fn=preexec,  # noqa: PLW1509
                    close_fds=True,
                )
                with self._active_lock:
                    self._active.add(proc.pid)
                if self._cancelled.is_set():
                    _kill_group(proc.pid)
                try:
                    try:
                        proc.wait(timeout=limits.timeout_s)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                        log.warning("sandbox.timeout", backend=self.name, timeout_s=limits.timeout_s)
                        _kill_group(proc.pid)
                        proc.wait()
                finally:
                    if proc.poll() is None:
                        _kill_group(proc.pid)
                        proc.wait()
                    _kill_group(proc.pid)  # stragglers left in the session
                    with self._active_lock:
                        self._active.discard(proc.pid)
            duration = time.monotonic() - start
            stdout, out_cut = _read_stream(base / "stdout", limits.max_stream_bytes)
            stderr, err_cut = _read_stream(base / "stderr", limits.max_stream_bytes)
            exit_code = -9 if timed_out else proc.returncode
            oom = exit_code != 0 and "MemoryError" in stderr[-4096:]
            outputs, outputs_cut = read_outputs(out, limits)
            return SandboxResult(
                backend=self.name,
                exit_code=exit_code,
                stdout=stdout,
                stderr=stderr,
                stdout_truncated=out_cut,
                stderr_truncated=err_cut,
                timed_out=timed_out,
                oom_killed=oom,
                duration_s=round(duration, 3),
                outputs=outputs,
                outputs_truncated=outputs_cut,
                network_isolated=unshare_net,
                warnings=warnings,
                cancelled=self._cancelled.is_set(),
            )
        finally:
            for dirpath, _dirs, _files in os.walk(base):
                with contextlib.suppress(OSError):
                    os.chmod(dirpath, 0o755)
            shutil.rmtree(base, ignore_errors=True)
