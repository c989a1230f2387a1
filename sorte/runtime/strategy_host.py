"""The trusted side of privilege separation: strategy code runs in a confined worker process.

A :class:`StrategyHost` copies a strategies folder (the deployment's, the candidate's, the
checkout's) into a fresh box with the few modules the worker needs, starts
``sorte.runtime.strategy_worker`` confined (``sandbox.confined``: Docker, else the local
namespaces; no environment, no network, read-only file system, the repository and data dir out
of sight) and asks it for signals over stdin/stdout. Parameters are read from each file's
``PARAMS`` literal and validated here, never by the worker; every answer is checked (lengths,
sides in -1/0/1, scores in [0, 1] or NaN, bounded reasons) before it reaches the cascade, so a
hostile strategy can only make bad decisions, which the risk limits and the guardian judge.

:class:`RemoteStrategy` has the surface of :class:`sorte.runtime.strategy.Strategy` that the
cascade uses (``name``, ``specs``, ``params``, ``param``, ``lookback``, ``signals``), so the
cascade, the backtester and the runtime do not know where the code runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from sorte.errors import StrategyError
from sorte.runtime.strategy import NOT_STRATEGIES, ParamSpec, read_param_specs, resolve_params
from sorte.runtime.strategy_wire import WireError, read_frame, write_frame
from sorte.runtime.values import Ohlcv, Params

#: What a call to a strategy that never answers (an endless loop) fails with; the guardian
#: reads it to call such a run a timeout.
NO_ANSWER = "the strategy worker did not answer within"
log = structlog.get_logger(__name__)

_SORTE = Path(__file__).resolve().parent.parent
#: The worker's whole view of Sorte: copies of these modules (paths relative to the package).
WORKER_MODULES = ("indicators.py", "runtime/values.py", "runtime/strategy_wire.py", "runtime/strategy_worker.py")
#: How the worker is started inside its box: isolated mode (no PYTHONPATH, no user site), the box first.
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from sorte.runtime.strategy_worker import main; main()"
MAX_REASON = 300
OUT_OF_MEMORY = "out of memory"
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0


def _release(proc: Any, box: Path) -> None:
    """End a worker and remove its box (``proc``: a started ConfinedProcess, or None)."""
    if proc is not None:
        proc.kill()
    shutil.rmtree(box, ignore_errors=True)


class StrategyFault(StrategyError):
    """The strategy worker failed, hung, died or answered outside the contract."""


def prepare_box(strategies_dir: Path, dest: Path) -> Path:
    """``dest`` with the worker's modules and a copy of the strategies' Python files (nothing else)."""
    lib = dest / "lib"
    for rel in WORKER_MODULES:
        target = lib / "sorte" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_SORTE / rel, target)
    for pkg in (lib / "sorte", lib / "sorte" / "runtime"):
        (pkg / "__init__.py").write_text("")
    strategies = lib / "strategies"
    strategies.mkdir()
    for src in sorted(Path(strategies_dir).glob("*.py")):
        if src.is_symlink() or not src.is_file():
            raise StrategyError(f"{src} is not a regular file: strategy files may not be links")
        shutil.copyfile(src, strategies / src.name)
    if not (strategies / "__init__.py").exists():
        (strategies / "__init__.py").write_text("")
    return dest


class _Connection:
    """A connected worker socket with the surface the host uses of a started worker."""

    warnings: list[str] = []

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stdin = sock.makefile("wb")
        self.proc = self  # host code reaches the worker's pipes through ``.proc``

    def fileno(self) -> int:
        return self.sock.fileno()

    def poll(self) -> int | None:
        return None if self.sock.fileno() >= 0 else 0

    def cpu_seconds(self) -> float:
        return 0.0  # measured by whoever started the worker

    def oom_killed(self) -> bool:
        return False  # known to whoever started the worker

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        self.sock.close()


def _connect(path: Path, timeout: float) -> _Connection:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return _Connection(sock)
        except OSError as exc:
            sock.close()
            if time.monotonic() > deadline:
                raise StrategyFault(f"no strategy worker answers on {path}: {exc}") from None
            time.sleep(0.1)


class _Reader:
    """Reads the worker's stdout with a deadline (a hung strategy must not hang the trader)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.deadline = 0.0
        self._buf = b""  # read ahead: a frame's lengths, header and body usually arrive together

    def read(self, n: int) -> bytes:
        if not self._buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            self._buf = os.read(self.fd, 1 << 20)
            if not self._buf:
                return b""
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


class StrategyHost:
    """One confined strategy worker for one strategies folder. Thread-safe; use as a context manager."""

    def __init__(
        self,
        strategies_dir: Path,
        *,
        backend: str = "local",
        call_timeout_s: float = CALL_TIMEOUT_S,
        memory_mb: int = 1024,
        connect: Path | None = None,
    ) -> None:
        """``connect``: the Unix socket of a worker someone else started and confined (a
        containerised slot's, started by the commander); otherwise this host starts its own."""
        self.strategies_dir = Path(strategies_dir)
        self.backend = "socket" if connect is not None else backend
        self.connect = connect
        self.call_timeout_s = call_timeout_s
        self.memory_mb = memory_mb
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._proc: Any = None
        self._box: Path | None = None
        self._stderr: Any = None
        self._reader: _Reader | None = None
        self._finalizer: weakref.finalize | None = None
        self._next = 0

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> StrategyHost:
        from sandbox.confined import scratch_dir, spawn
        from sandbox.contract import SandboxLimits

        if self._proc is not None:
            return self
        if self.connect is not None:
            self._proc = _connect(self.connect, START_TIMEOUT_S)
            self._reader = _Reader(self._proc.fileno())
            self._call({"op": "ping"}, [], START_TIMEOUT_S)
            log.info("strategy_host.connected", socket=str(self.connect), strategies=str(self.strategies_dir))
            return self
        self._box = scratch_dir("strategies")
        # A host that is dropped without close() (a crash, a test) still ends its worker and
        # removes its folders, at garbage collection or at the latest when the interpreter exits.
        self._finalizer = weakref.finalize(self, _release, None, self._box)
        os.chmod(self._box, 0o755)
        prepare_box(self.strategies_dir, self._box / "box")
        self._stderr = tempfile.TemporaryFile(prefix="sorte-worker-stderr-")  # noqa: SIM115 - lives with the worker
        # pids: RLIMIT_NPROC counts every task of uid 65534 on the machine (other workers, sandbox
        # containers and their threads too), so it is a ceiling against fork bombs, not a budget.
        limits = SandboxLimits(memory_bytes=self.memory_mb * 1024 * 1024, timeout_s=30 * 24 * 3600.0, pids=1024)
        argv = [sys.executable, "-I", "-c", BOOT, "{box}/lib"]
        try:
            self._proc = spawn(
                argv, self._box / "box", backend=self.backend, limits=limits, stderr=self._stderr.fileno()
            )
        except OSError as exc:
            self.close()
            raise StrategyFault(f"cannot start the strategy worker ({self.backend}): {exc}") from None
        self.warnings = list(self._proc.warnings)
        for w in self.warnings:
            log.warning("strategy_host.weak_isolation", backend=self.backend, warning=w)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _release, self._proc, self._box)
        self._reader = _Reader(self._proc.proc.stdout.fileno())
        try:
            self._call({"op": "ping"}, [], START_TIMEOUT_S)
        except StrategyFault:
            self.close()
            raise
        log.info("strategy_host.started", backend=self.backend, strategies=str(self.strategies_dir))
        return self

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._box is not None:
            shutil.rmtree(self._box, ignore_errors=True)
            self._box = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def __enter__(self) -> StrategyHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cpu_seconds(self) -> float:
        """The worker's CPU time so far, read by the operating system, not reported by the worker."""
        return self._proc.cpu_seconds() if self._proc is not None else 0.0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.proc.poll() is None

    # --- requests ---------------------------------------------------------------------------

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError):
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 2000))
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    def _call(self, header: dict[str, Any], arrays: list[np.ndarray], timeout: float | None = None):
        limit = timeout or self.call_timeout_s
        with self._lock:
            proc, reader = self._proc, self._reader  # close() from another thread may clear them
            if proc is None or reader is None:
                raise StrategyFault("the strategy worker is not running")
            reader.deadline = time.monotonic() + limit
            try:
                write_frame(proc.proc.stdin, header, arrays)
                reply, data = read_frame(reader)
            except TimeoutError:
                self._fail()
                raise StrategyFault(f"{NO_ANSWER} {limit:g}s") from None
            except (EOFError, OSError, ValueError, WireError) as exc:
                raise StrategyFault(self._broken(proc, exc)) from None
        if reply.get("ok") is not True:
            raise StrategyFault(str(reply.get("error", "the strategy worker refused the request"))[:2000])
        return reply, data

    def _broken(self, proc: Any, exc: BaseException) -> str:
        """Why the channel broke, said once the worker is gone."""
        tail = self._stderr_tail()
        oom = proc.oom_killed()
        self._fail()
        if oom:
            return f"the strategy worker was killed: {OUT_OF_MEMORY}"
        return f"the strategy worker broke the channel: {exc}" + (f" ({tail})" if tail else "")

    def _fail(self) -> None:
        """A worker that hung or broke the protocol cannot be trusted to be in step: end it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()

    def load(self, stages: dict[str, tuple[str, Params]]) -> dict[str, int]:
        """Load ``{key: (strategy name, validated params)}``; their lookbacks by key."""
        items = [{"key": k, "strategy": name, "params": p.as_dict()} for k, (name, p) in stages.items()]
        reply, _ = self._call({"op": "load", "stages": items}, [])
        lookbacks = reply.get("lookbacks")
        if not isinstance(lookbacks, dict) or set(lookbacks) != set(stages):
            raise StrategyFault("the strategy worker answered load with the wrong stages")
        out: dict[str, int] = {}
        for key, value in lookbacks.items():
            if type(value) is not int or not 0 <= value <= 1_000_000:
                raise StrategyFault(f"stage {key!r}: lookback must be an int in [0, 1000000], got {value!r}")
            out[key] = value
        return out

    def signals(self, windows: list[Ohlcv], keys: list[str]) -> list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """(score, side, reason) of each key on each window: ``result[window][key index]``."""
        arrays = [
            np.asarray(col, dtype="<f8") for w in windows for col in (w.ts, w.open, w.high, w.low, w.close, w.volume)
        ]
        header = {"op": "signals", "keys": keys, "intervals": [float(w.interval_s) for w in windows]}
        reply, data = self._call(header, arrays)
        tables = reply.get("reasons")
        if not isinstance(tables, list) or len(tables) != len(windows) * len(keys) or len(data) != 3 * len(tables):
            raise StrategyFault("the strategy worker answered with the wrong number of signals")
        out, i = [], 0
        for w in windows:
            row = []
            for key in keys:
                row.append(_checked(key, len(w), data[3 * i], data[3 * i + 1], data[3 * i + 2], tables[i]))
                i += 1
            out.append(row)
        return out

    def strategy(self, name: str, overrides: dict[str, Any] | None = None) -> RemoteStrategy:
        """A strategy of this host's folder, its parameters validated here, its code loaded there."""
        path = self.strategies_dir / f"{name}.py"
        if name in NOT_STRATEGIES or not name.isidentifier() or name.startswith("_") or not path.is_file():
            from sorte.runtime.strategy import available_strategies

            known = ", ".join(available_strategies(self.strategies_dir)) or "none"
            raise StrategyError(f"unknown strategy {name!r} in {self.strategies_dir} (available: {known})")
        specs = read_param_specs(path)
        params = resolve_params(specs, overrides, name)
        with self._lock:
            self._next += 1
            key = f"{name}#{self._next}"
        try:
            lookback = self.load({key: (name, params)})[key]
        except StrategyFault as exc:
            raise StrategyError(f"strategy {name!r} failed to load: {exc}") from None
        return RemoteStrategy(self, key, name, path, specs, params, lookback)


def _checked(key: str, n: int, score: np.ndarray, side: np.ndarray, codes: np.ndarray, table: Any):
    """One stage's answer on one window, or StrategyFault saying what breaks the contract."""
    if score.dtype != np.dtype("<f8") or side.dtype != np.dtype("|i1") or codes.dtype != np.dtype("<u4"):
        raise StrategyFault(f"stage {key!r}: answer arrays of the wrong types")
    if not (len(score) == len(side) == len(codes) == n):
        raise StrategyFault(f"stage {key!r}: {len(score)} scores for {n} bars")
    with np.errstate(invalid="ignore"):  # NaN compares False on both sides: allowed
        if (score < 0.0).any() or (score > 1.0).any():
            raise StrategyFault(f"stage {key!r}: scores must lie in [0, 1] (or be NaN)")
    if side.size and (side.min() < -1 or side.max() > 1):
        raise StrategyFault(f"stage {key!r}: sides must be -1, 0 or 1")
    if not isinstance(table, list) or not all(isinstance(t, str) for t in table) or len(table) > max(n, 1):
        raise StrategyFault(f"stage {key!r}: malformed reasons")
    if codes.size and int(codes.max()) >= len(table):
        raise StrategyFault(f"stage {key!r}: reason codes out of range")
    reasons = np.array([t[:MAX_REASON] for t in table] or [""], dtype=object)[codes] if n else np.array([], object)
    return score, side, reasons


class RemoteStrategy:
    """A strategy whose code runs in a :class:`StrategyHost`'s worker."""

    def __init__(
        self,
        host: StrategyHost,
        key: str,
        name: str,
        path: Path,
        specs: dict[str, ParamSpec],
        params: Params,
        lookback: int,
    ) -> None:
        self.host, self.key, self.name, self.path = host, key, name, path
        self.specs, self.params, self._lookback = specs, params, lookback
        #: answers fetched ahead by ``Cascade.prefetch``: id(window) -> (window, answer)
        self.ready: dict[int, tuple[Ohlcv, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    @property
    def description(self) -> str:
        return ""

    def lookback(self) -> int:
        return self._lookback

    def signals(self, bars: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hit = self.ready.pop(id(bars), None)
        if hit is not None and hit[0] is bars:
            return hit[1]
        return self.host.signals([bars], [self.key])[0][0]

    def param(self, name: str, default: float) -> float:
        return float(getattr(self.params, name, default))
