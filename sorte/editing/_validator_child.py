"""Sandboxed validator process: imports edited strategy code and calls lookback(), off the host.

Run by ``sorte.editing.sandboxed`` as ``python -I -B _validator_child.py`` confined by
``sandbox.confined`` (as root: a new network namespace and a new root holding only the
interpreter and system folders, a private /tmp, uid 65534; without namespaces: the current
user, its own temp dir), with a scrubbed environment and rlimits. It is deliberately
standalone: it imports numpy and the copy of ``sorte/indicators.py`` placed next to it, nothing
else of the project, and no secret ever reaches it.

Protocol: one JSON job per line on stdin, one JSON answer per line on stdout. For each job
the process (already warm: numpy imported) writes the strategy files into a fresh folder of
its own temp dir ($TMPDIR: the private /tmp, or its scratch folder without namespaces),
forks, and the fork arms an audit hook that refuses file writes, reads outside the allowed
roots, process creation, sockets, ctypes, generator / traceback frames and gc introspection
before any plan code runs. The fork's own stdout/stderr go to /dev/null; its result comes back through a pipe. A
fork that runs past the job's timeout is killed.

The hook has no off switch: it is created armed, in the fork, and every name it uses (its
roots, the blocked events, even ``len`` and ``os.lstat``) is a closure variable bound when
it is made. Plan code that rebinds this module's globals, builtins or ``os`` functions
changes nothing the hook reads, and the hook's function object is reachable only through
the interpreter's audit-hook list and the gc (whose introspection the hook refuses): no
frame plan code can walk to (sys._getframe().f_back...) holds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import posix
import resource
import select
import shutil
import signal
import stat
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the copied ``sorte`` package (indicators only)

import numpy  # noqa: E402,F401 - warm: every strategy imports it

import sorte.indicators  # noqa: E402,F401

REQUIRED = ("lookback", "features", "decide")
MAX_DETAIL = 2000
#: Folders plan code may read (the interpreter, this copy), filled in by main() before any job.
_READ_ROOTS: list[str] = []

# Audit events refused once plan code may run (prefix match). Defence in depth: the sandbox
# (namespaces, uid, read-only copy) is the wall, this hook also holds where it is weaker.
_BLOCKED = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.startfile",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.chflags",
    "os.lchflags",
    "os.lchmod",
    "os.lchown",
    "os.truncate",
    "os.utime",
    "os.putenv",
    "os.unsetenv",
    "os.setxattr",
    "os.removexattr",
    "subprocess.",
    "pty.",
    "socket.",
    "ctypes.",
    "shutil.",
    "mmap.",
    "resource.setrlimit",
    "resource.prlimit",
    "sys.addaudithook",
    "sys._current_frames",
    "gc.",
    "sys.setprofile",
    "sys.settrace",
    "code.__new__",
    "pickle.",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "telnetlib.",
    "sqlite3.",
    "tempfile.",
)
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back", "f_globals", "f_locals", "f_builtins"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _make_hook(read_roots: tuple[str, ...]):  # noqa: C901 - one closure on purpose
    """The audit hook of one job, armed from birth. Everything it uses is bound here, as
    closure variables: C functions and immutable values that plan code cannot rebind."""
    roots = tuple(read_roots)
    blocked = tuple(_BLOCKED)
    frame_attrs = frozenset(_FRAME_ATTRS)
    write_flags = _WRITE_FLAGS
    lstat, readlink, getcwd, is_link = posix.lstat, posix.readlink, posix.getcwd, stat.S_ISLNK
    str_t, bytes_t, int_t, type_, len_, denied = str, bytes, int, type, len, PermissionError

    def resolve(path: str) -> str:
        # os.path.realpath is Python code reading module globals plan code could rebind.
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        pending = path.split("/")[::-1]
        real, hops = "", 0
        while pending:
            part = pending.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                real = real.rpartition("/")[0]
                continue
            candidate = real + "/" + part
            try:
                mode = lstat(candidate).st_mode
            except OSError:
                real = candidate  # does not exist (yet): the open fails on its own
                continue
            if not is_link(mode):
                real = candidate
                continue
            hops += 1
            if hops > 40:
                raise denied("sandboxed validation: too many symlinks")
            target = readlink(candidate)
            if target.startswith("/"):
                real = ""
            pending.extend(target.split("/")[::-1])
        return real or "/"

    def check_open(args: tuple) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if type_(mode) is str_t and ("w" in mode or "a" in mode or "x" in mode or "+" in mode):
            raise denied("sandboxed validation: opening a file for writing is not allowed")
        if type_(flags) is int_t and flags & write_flags:
            raise denied("sandboxed validation: opening a file for writing is not allowed")
        kind = type_(path)
        if kind is int_t:
            return
        if kind is bytes_t:
            path = path.decode("utf-8", "surrogateescape")
        elif kind is not str_t:
            raise denied("sandboxed validation: only plain str or bytes paths may be opened")
        real = resolve(path)
        for root in roots:
            if real == root or real.startswith(root + "/"):
                return
        raise denied("sandboxed validation: reading " + real + " is not allowed")

    def hook(event: str, args: tuple) -> None:
        if event == "open" and len_(args) >= 3:
            check_open(args)
        elif event.startswith(blocked):
            raise denied("sandboxed validation: " + event + " is not allowed")
        elif event == "object.__getattr__" and len_(args) > 1 and args[1] in frame_attrs:
            raise denied("sandboxed validation: reading " + str_t(args[1]) + " is not allowed")

    return hook


class Params:
    """The attribute bag strategies receive (as sorte.runtime.strategy.Params; values are
    resolved and checked on the host, so pydantic is not needed here)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"Params({self.__dict__})"


class _Refused(Exception):
    pass


def _load(stem: str, folder: str, cache: dict) -> object:
    if stem in cache:
        return cache[stem]
    path = os.path.join(folder, "strategies", f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"sorte_strategy_{stem}_validate", path)
    if spec is None or spec.loader is None:
        raise _Refused(f"cannot load strategy file strategies/{stem}.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is the strategy's fault
        raise _Refused(f"strategy {stem!r} failed to import: {type(exc).__name__}: {exc}") from None
    missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
    if missing:
        raise _Refused(f"strategy {stem!r} does not define {', '.join(missing)}()")
    cache[stem] = module
    return module


def _run_checks(folder: str, checks: list[dict]) -> dict | None:
    """The first failing check as {"tag", "detail"}, or None when all pass."""
    cache: dict = {}
    for check in checks:
        prefix = f"cascade stage {check['stage']!r}: " if check.get("stage") else ""
        try:
            try:
                module = _load(check["stem"], folder, cache)
            except _Refused as exc:
                raise _Refused(prefix + str(exc)) from None
            int(module.lookback(Params(check["params"])))  # type: ignore[attr-defined]
        except _Refused as exc:
            return {"tag": check["tag"], "detail": str(exc)[:MAX_DETAIL]}
        except BaseException as exc:  # noqa: BLE001 - any failure of the edited code refuses the plan
            return {"tag": check["tag"], "detail": f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]}
    return None


def _child(folder: str, checks: list[dict], write_fd: int, cpu_s: int) -> None:
    """In the fork: no output, a CPU limit, the hook armed, then the checks."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        os.chdir(folder)
        sys.path.insert(0, folder)  # ``strategies.*`` helpers resolve to the edited copy
        # Armed for good before any plan code runs: there is no flag to clear.
        sys.addaudithook(_make_hook((*_READ_ROOTS, os.path.realpath(folder))))
        result: dict = {"failure": _run_checks(folder, checks)}
    except BaseException as exc:  # noqa: BLE001
        result = {"failure": {"tag": None, "detail": f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]}}
    data = json.dumps(result).encode()
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(write_fd, data) :]
    os._exit(0)


def _job(job: dict) -> dict:
    folder = tempfile.mkdtemp(prefix="job-")
    try:
        for rel, text in job["files"].items():
            if rel.startswith("/") or ".." in rel.split("/"):
                return {"error": f"bad path {rel!r}"}
            path = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        if "pandas" not in sys.modules and any("pandas" in text for text in job["files"].values()):
            import pandas  # noqa: F401 - warm, before the hook: later jobs fork with it loaded
        timeout = float(job.get("timeout_s", 20))
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(folder, job["checks"], write_fd, int(timeout) + 1)
        os.close(write_fd)
        chunks, deadline = [], time.monotonic() + timeout
        timed_out = False
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(0.0, left))
            if not ready:
                timed_out = True
                break
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_fd)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if timed_out:
            return {"failure": {"tag": None, "detail": f"timed out after {timeout:g} s"}}
        try:
            return json.loads(b"".join(chunks) or b"null") or {
                "failure": {"tag": None, "detail": f"the validator exited without a result (status {status})"}
            }
        except ValueError:
            return {"failure": {"tag": None, "detail": "the validator returned a malformed result"}}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    roots = {HERE, sys.prefix, sys.base_prefix, sys.exec_prefix, *(p for p in sys.path if p)}
    _READ_ROOTS.extend(os.path.realpath(r) for r in roots if os.path.isabs(r) and r != "/")
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            job = json.loads(line)
            answer = _job(job)
            answer["id"] = job.get("id")
        except Exception as exc:  # noqa: BLE001 - answer every line, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
