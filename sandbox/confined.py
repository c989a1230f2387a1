"""Long-lived confined processes that talk over their stdin and stdout (the strategy worker).

``spawn(argv, box, ...)`` starts ``argv`` with ``box`` (a folder the caller prepared: code and
inputs, never secrets) as its read-only working tree, an environment holding nothing from the
host, and the isolation of the chosen backend:

- ``docker``: ``docker run -i`` of the offline sandbox image: no network, read-only root, the
  host's runtime and ``box`` mounted read-only, a private ``/tmp``, uid 65534, no capabilities,
  memory/pids/CPU limits. The container is removed when the process ends.
- ``local``: a child process. As root it gets a new network namespace (no interface but
  loopback) and a private mount namespace whose root (``chroot``) is a read-only tmpfs holding
  only the allow-list the Docker image mounts (the host's system folders, the interpreter, a few
  /etc entries, four devices) and a private, size-bounded tmpfs ``/tmp`` holding ``box`` read-only: the repository, the
  data dir, home folders, the host's /tmp and /proc do not exist there. It runs as uid 65534 with
  rlimits. An interpreter under /tmp is bound on top of the private /tmp, so it stays reachable.
  Without root (or in a container without CAP_SYS_ADMIN) none of that is possible: it keeps only
  the scrubbed environment, the rlimits and its own scratch folder as /tmp and $HOME, and says what
  it lacks in ``warnings``.

What could not be had is listed in ``ConfinedProcess.warnings``; callers log it once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.contract import SANDBOX_LABEL, SandboxLimits
from sandbox.image import (
    _GROUP,
    _HOST_DIRS,
    _NSSWITCH,
    _PASSWD,
    OFFLINE_IMAGE,
    _etc_mounts,
    ensure_offline_image,
    host_runtime_mounts,
)
from sandbox.local_backend import SANDBOX_UID, can_unshare_network
from sandbox.processes import pid_alive

_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_MOVE = 8192
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
#: Where ``box`` appears inside the confined process (both backends).
BOX = "/tmp/box"
#: The only devices a confined process sees.
_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
_ENV = {
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass
class ConfinedProcess:
    """A started confined process: write to ``proc.stdin``, read ``proc.stdout``."""

    proc: subprocess.Popen[bytes]
    backend: str
    warnings: list[str] = field(default_factory=list)
    scratch: Path | None = None  # the host folder behind the private /tmp (local backend)
    container: str | None = None

    def cpu_seconds(self) -> float:
        """CPU time the confined process has used so far, measured from outside it (the process
        cannot report a smaller figure). 0.0 once it has ended."""
        if self.container is not None:
            return _container_cpu(self.container)
        try:
            with open(f"/proc/{self.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def oom_killed(self) -> bool:
        """Whether the kernel ended the process for memory (a container's limit); the local
        backend's address-space limit makes allocations fail instead."""
        if self.container is None:
            return False
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.OOMKilled}}", self.container],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip() == "true"

    def kill(self) -> None:
        if self.container is not None:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True, timeout=30, check=False)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 9)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        if self.scratch is not None:
            _remove_tree(self.scratch)
            self.scratch = None


def _container_cpu(name: str) -> float:
    from sandbox.docker_backend import docker_client

    client = docker_client(timeout=30.0)
    try:
        stats = client.api.stats(name, stream=False, one_shot=True)
        return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9
    except Exception:  # noqa: BLE001 - a container that has ended has no figure
        return 0.0
    finally:
        client.close()


def _remove_tree(path: Path) -> None:
    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def scratch_dir(kind: str) -> Path:
    """A new private folder ``sorte-{kind}-{pid}-*`` in the temp dir. Leftovers of processes
    that died without cleaning up (SIGKILL, a power cut) are removed first."""
    sweep_stale(kind)
    return Path(tempfile.mkdtemp(prefix=f"sorte-{kind}-{os.getpid()}-"))


def sweep_stale(kind: str) -> int:
    """Remove ``sorte-{kind}-{pid}-*`` folders whose process is gone; how many were removed."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"sorte-{kind}-*-*"):
        pid = path.name.split("-")[2]
        if not pid.isdigit() or pid_alive(int(pid)) or path.is_symlink() or not path.is_dir():
            continue
        if path.stat().st_uid != os.geteuid():
            continue  # another user's: not ours to remove
        _remove_tree(path)
        removed += 1
    return removed


#: What a local process lacks without namespaces: said in ``warnings`` (callers log it once).
NO_NAMESPACES = "no network or mount namespace (needs root and util-linux 'unshare'; in a container, CAP_SYS_ADMIN)"


def namespaces_available() -> bool:
    """True when a local confined process gets its own network, mount namespace and root."""
    return os.geteuid() == 0 and can_unshare_network()


def environment(extra: dict[str, str] | None = None, tmp: str = "/tmp") -> dict[str, str]:
    """The whole environment of a confined process: nothing is copied from the host's.
    ``tmp``: its scratch folder ($HOME and $TMPDIR), the private /tmp unless said otherwise."""
    path = ":".join([str(Path(sys.prefix) / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return {**(extra or {}), **_ENV, "PATH": path, "HOME": tmp, "TMPDIR": tmp}


def spawn(
    argv: list[str],
    box: Path,
    *,
    backend: str = "local",
    limits: SandboxLimits | None = None,
    stderr: int | None = None,
) -> ConfinedProcess:
    """Start ``argv`` (``{box}`` in it stands for where ``box`` is mounted) confined by ``backend``."""
    limits = limits or SandboxLimits(timeout_s=24 * 3600.0)
    argv = [a.replace("{box}", BOX) for a in argv]
    if backend == "docker":
        return _spawn_docker(argv, Path(box), limits, stderr)
    if backend == "local":
        return _spawn_local(argv, Path(box), limits, stderr)
    raise ValueError(f"unknown confinement backend {backend!r} (docker or local)")


# --- docker ---------------------------------------------------------------------------------


def _spawn_docker(argv: list[str], box: Path, limits: SandboxLimits, stderr: int | None) -> ConfinedProcess:
    if shutil.which("docker") is None:
        raise OSError("the docker command-line client is not installed")
    from sandbox.docker_backend import docker_client

    client = docker_client(timeout=30.0)
    try:
        ensure_offline_image(client, OFFLINE_IMAGE)
    finally:
        client.close()
    name = f"sorte-worker-{uuid.uuid4().hex[:12]}"
    # No --rm: a container that died keeps its state (out of memory?) until kill() removes it.
    cmd = ["docker", "run", "-i", "--name", name, "--label", f"{SANDBOX_LABEL}=1"]
    cmd += ["--label", f"{SANDBOX_LABEL}.owner_pid={os.getpid()}"]
    cmd += ["--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    cmd += ["--ipc", "none", "--user", f"{SANDBOX_UID}:{SANDBOX_UID}", "--workdir", BOX, "--log-driver", "none"]
    cmd += ["--memory", str(limits.memory_bytes), "--memory-swap", str(limits.memory_bytes)]
    cmd += ["--pids-limit", str(limits.pids), "--cpus", str(limits.cpus)]
    cmd += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777"]
    for src, spec in host_runtime_mounts().items():
        cmd += ["-v", f"{src}:{spec['bind']}:ro"]
    cmd += ["-v", f"{Path(box).resolve()}:{BOX}:ro"]
    for key, value in environment().items():
        cmd += ["-e", f"{key}={value}"]
    proc = subprocess.Popen(  # noqa: S603 - the image, mounts and flags above are fixed by Sorte
        [*cmd, OFFLINE_IMAGE, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k.startswith("DOCKER_") or k in ("PATH", "HOME")},
        start_new_session=True,
    )
    return ConfinedProcess(proc, "docker", container=name)


# --- local ----------------------------------------------------------------------------------


def _spawn_local(argv: list[str], box: Path, limits: SandboxLimits, stderr: int | None) -> ConfinedProcess:
    warnings: list[str] = []
    confine = namespaces_available()
    scratch = scratch_dir("confined")
    os.chmod(scratch, 0o755)
    tmp = scratch / "tmp"
    shutil.copytree(box, tmp / "box", symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _read_only(tmp / "box")
    os.chmod(tmp, 0o1777)
    if confine:
        (scratch / "root").mkdir()
        preexec = _namespace_preexec(limits, scratch)
    else:
        warnings.append(
            f"{NO_NAMESPACES}: strategy code runs as the current user with network access and the host's file "
            "system (only the environment is scrubbed and rlimits set): run Sorte as root, or use Docker"
        )
        argv = [a.replace(BOX, str(tmp / "box")) for a in argv]
        preexec = _rlimit_preexec(limits)
    proc = subprocess.Popen(  # noqa: S603 - the sandbox's purpose
        argv,
        cwd="/" if confine else str(tmp / "box"),
        # Without a private /tmp, its own scratch folder stands in: nothing is written to the host's /tmp.
        env=environment() if confine else environment(tmp=str(tmp)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        preexec_fn=preexec,  # noqa: PLW1509
        close_fds=True,
    )
    return ConfinedProcess(proc, "local", warnings, scratch=scratch)


def _read_only(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(Path(dirpath) / name, 0o444)
        os.chmod(dirpath, 0o555)


def _prefixes() -> list[str]:
    """Interpreter trees the process needs (a venv and the Python it was made from)."""
    return sorted({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix)}, key=len)


def _rlimits(limits: SandboxLimits) -> None:
    cpu = max(1, int(limits.timeout_s * limits.cpus) + 1)
    _lower(resource.RLIMIT_AS, limits.memory_bytes)
    _lower(resource.RLIMIT_NPROC, limits.pids)
    _lower(resource.RLIMIT_CPU, cpu)
    _lower(resource.RLIMIT_FSIZE, limits.tmpfs_bytes)
    _lower(resource.RLIMIT_CORE, 0)


def _lower(which: int, value: int) -> None:
    """Set a limit to ``value``, or keep the tighter one already in force (a worker started
    inside a sandbox inherits the sandbox's limits and may not raise them)."""
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _rlimit_preexec(limits: SandboxLimits):
    def preexec() -> None:
        os.setsid()
        _rlimits(limits)

    return preexec


def _root_plan() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """What the new root holds: (path, symlink target) links and (source, path) read-only binds.

    The same allow-list as the Docker image: the host's system folders, the interpreter, the
    loader's and OpenSSL's /etc entries, four character devices. Nothing else of the host exists
    there: not the repository, the data dir, the home folders, the host's /tmp or /proc."""
    links: list[tuple[str, str]] = []
    binds: list[tuple[str, str]] = []
    for d in _HOST_DIRS:
        if os.path.islink(d):
            links.append((d, os.readlink(d)))
        elif os.path.isdir(d):
            binds.append((d, d))
    for prefix in _prefixes():
        if not any(prefix == b or prefix.startswith(b + "/") for b, _ in binds):
            binds.append((prefix, prefix))
    binds += [(src, spec["bind"]) for src, spec in _etc_mounts().items()]
    binds += [(d, d) for d in _DEVICES if os.path.exists(d)]
    return links, binds


def _namespace_preexec(limits: SandboxLimits, scratch: Path):
    links, binds = _root_plan()
    root, tmp = str(scratch / "root"), str(scratch / "tmp")
    tmpfs_bytes = limits.tmpfs_bytes
    etc_files = {"/etc/passwd": _PASSWD, "/etc/group": _GROUP, "/etc/nsswitch.conf": _NSSWITCH}

    def preexec() -> None:  # runs in the child between fork and exec
        os.setsid()
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET | _CLONE_NEWNS) != 0:
            os._exit(121)
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE, None)
        _mount(libc, "tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=755,size=1m")
        # A private, size-bounded scratch /tmp (nothing written there touches the host's disk),
        # mounted before the binds: an interpreter under the host's /tmp is bound on top of it
        # (only that prefix, read-only) instead of being hidden by it.
        os.makedirs(root + "/tmp")
        _mount(libc, "tmpfs", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode=1777,size={tmpfs_bytes}")
        for path, target in links:
            os.symlink(target, root + path)
        for path, text in etc_files.items():
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            with open(root + path, "w") as fh:
                fh.write(text)
        for src, path in binds:
            _bind_read_only(libc, src, root + path)
        _bind_read_only(libc, tmp + "/box", root + BOX)
        _mount(libc, None, root, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None)
        os.chroot(root)
        os.chdir(BOX)
        _rlimits(limits)
        os.setgroups([])
        os.setgid(SANDBOX_UID)
        os.setuid(SANDBOX_UID)

    return preexec


def _bind_read_only(libc: ctypes.CDLL, src: str, target: str) -> None:
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(libc, src, target, None, _MS_BIND | _MS_REC, None)
    flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID
    if not src.startswith("/dev/"):
        flags |= _MS_NODEV
    # When the plain remount is refused, the kernel keeps some options locked on this mount
    # (nodev, noexec, atime): ask again with them kept.
    if (
        libc.mount(None, target.encode(), None, ctypes.c_ulong(flags), None) != 0
        and libc.mount(None, target.encode(), None, ctypes.c_ulong(flags | _locked(src)), None) != 0
    ):
        os._exit(123)


def _locked(src: str) -> int:
    best, flags = "", 0
    with open("/proc/self/mountinfo") as fh:
        for fields in (line.split() for line in fh):
            point = fields[4]
            if (src == point or src.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best = point
                flags = sum(_OPTION_FLAGS.get(opt, 0) for opt in fields[5].split(","))
    return flags


#: Per-mount options that must be kept on a remount (the kernel refuses to drop locked ones).
_OPTION_FLAGS = {
    "nosuid": 2,
    "nodev": 4,
    "noexec": 8,
    "noatime": 1024,
    "nodiratime": 2048,
    "relatime": 1 << 21,
    "strictatime": 1 << 24,
}


def _mount(libc: ctypes.CDLL, src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = [None if v is None else v.encode() for v in (src, target, fstype, data)]
    if libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]) != 0:
        os._exit(122)
