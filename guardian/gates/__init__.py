"""Validation gates. Each gate returns a :class:`guardian.verdict.GateResult`.

Gates that run tools take a ``runner`` with the shape of ``sandbox.run``::

    runner(command: list[str], worktree: Path, limits) -> result   # limits: a dict or sandbox.SandboxLimits

where ``result`` has ``exit_code, stdout, stderr, timed_out, oom_killed, duration_s,
outputs``. The command runs with ``worktree`` as its working directory; the token
``{out}`` in the command stands for a private writable output folder, which the runner
substitutes. ``outputs`` is what the command left there: a mapping of relative file name
to bytes/str, or the folder's :class:`~pathlib.Path`.

:func:`subprocess_runner` is a plain, *unsandboxed* runner for tests and trusted use.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

OUT = "{out}"


class RunResult(Protocol):
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    oom_killed: bool
    duration_s: float
    outputs: Any


class Runner(Protocol):
    def __call__(self, command: list[str], worktree: Path, limits: Any) -> RunResult: ...


@dataclass
class LocalResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    oom_killed: bool = False
    duration_s: float = 0.0
    outputs: dict[str, bytes] = field(default_factory=dict)


def subprocess_runner(command: list[str], worktree: Path, limits: Any = None) -> LocalResult:
    """Run ``command`` in ``worktree`` as a plain subprocess (no isolation); collects ``{out}``.

    ``limits`` is a dict or an object (such as ``sandbox.SandboxLimits``); only ``timeout_s``
    and ``env`` are honoured here.
    """
    limits = limits if isinstance(limits, Mapping) else (vars(limits) if limits is not None else {})
    timeout = float(limits.get("timeout_s", 300))
    with tempfile.TemporaryDirectory(prefix="guardian-out-") as out:
        argv = [a.replace(OUT, out) for a in command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update({str(k): str(v) for k, v in (limits.get("env") or {}).items()})
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(  # noqa: S603 - trusted, test-only runner
                argv, cwd=worktree, capture_output=True, text=True, timeout=timeout, env=env
            )
            code, stdout, stderr, timed_out = proc.returncode, proc.stdout, proc.stderr, False
        except subprocess.TimeoutExpired as exc:
            code, timed_out = -9, True
            stdout = _text(exc.stdout)
            stderr = _text(exc.stderr)
        outputs = {p.relative_to(out).as_posix(): p.read_bytes() for p in Path(out).rglob("*") if p.is_file()}
        return LocalResult(code, stdout, stderr, timed_out, False, time.perf_counter() - t0, outputs)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def read_output(result: RunResult, name: str) -> bytes | None:
    """The file ``name`` that the command wrote under ``{out}``, or None."""
    outputs = getattr(result, "outputs", None)
    if outputs is None:
        return None
    if isinstance(outputs, (str, Path)):
        path = Path(outputs) / name
        return path.read_bytes() if path.is_file() else None
    if isinstance(outputs, Mapping):
        data = outputs.get(name)
        if data is None:
            return None
        return data.encode() if isinstance(data, str) else bytes(data)
    return None
