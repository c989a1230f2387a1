"""Slot backends: how a slot's process is started, watched and stopped.

``LocalBackend`` (the default) runs ``python -m commander.slot`` as a child process with the
deployment's worktree first on ``PYTHONPATH``; ``commander.docker_slots.DockerBackend`` runs
the same command in a container through the docker SDK. The commander supervises both the
same way: it talks to the slot over the Unix socket, restarts a crashed active slot with
backoff, and kills what it no longer needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel


class SlotSpec(BaseModel):
    slot: str
    deployment_id: int
    commit: str
    worktree: Path  # the deployment's checkout: the slot's code and strategies
    socket: Path  # the commander listens here; the slot connects
    commander_dir: Path  # lease and shared ledger
    token: str  # the slot says it back in its hello: a stale process cannot pose as this one
    heartbeat_s: float = 0.5
    log_file: Path

    def argv(self) -> list[str]:
        return [
            "-m",
            "commander.slot",
            "--slot",
            self.slot,
            "--socket",
            str(self.socket),
            "--commander-dir",
            str(self.commander_dir),
            "--deployment",
            str(self.deployment_id),
            "--token",
            self.token,
            "--heartbeat",
            str(self.heartbeat_s),
        ]


#: Parts of a variable name that mark a secret: such variables never reach a slot.
SECRET_MARKERS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL", "AUTH")


def slot_environment(spec: SlotSpec, host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A slot's whole environment: the host's non-secret ``SORTE_*`` variables (log level and the
    like; the settings themselves come over the socket) and fixed interpreter variables. Nothing
    else of the host's environment is passed on: no token, key or password, SORTE_ or other."""
    host_env = os.environ if host_env is None else host_env
    env = {
        k: v
        for k, v in host_env.items()
        if k.upper().startswith("SORTE_") and not any(m in k.upper() for m in SECRET_MARKERS)
    }
    env.update(
        {
            "PYTHONPATH": str(spec.worktree),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",  # the worktree is read-only
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        }
    )
    return env


class SlotProcess(Protocol):
    ident: str  # pid or container id, for status and logs

    async def wait(self) -> int:
        """Return the exit status once the process has ended."""
        ...

    def kill(self) -> None:
        """Stop it at once (SIGKILL); harmless when it has already ended."""
        ...


class SlotBackend(Protocol):
    name: str

    async def start(self, spec: SlotSpec) -> SlotProcess: ...

    def cleanup(self) -> None:
        """Remove what a previous commander of this data directory left running."""
        ...


class LocalProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ident = f"pid {proc.pid}"

    async def wait(self) -> int:
        return await self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class LocalBackend:
    """Child processes in their own session: Ctrl-C in the terminal reaches the commander,
    which stops the slots in order, not the slots directly."""

    name = "local"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    async def start(self, spec: SlotSpec) -> LocalProcess:
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = slot_environment(spec)
        with open(spec.log_file, "ab") as log:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                *spec.argv(),
                cwd=str(spec.worktree),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        return LocalProcess(proc)

    def cleanup(self) -> None:
        """Local slots end on their own when their commander's socket closes."""
