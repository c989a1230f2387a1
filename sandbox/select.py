"""Backend selection: ``docker``, ``local`` or ``auto`` (Docker when the engine answers)."""

from __future__ import annotations

from typing import Literal

import structlog

from sandbox.contract import SandboxBackend
from sandbox.docker_backend import DockerSandbox, docker_available
from sandbox.local_backend import LocalSandbox

log = structlog.get_logger(__name__)

SandboxMode = Literal["docker", "local", "auto"]


class SandboxUnavailable(RuntimeError):
    """The requested sandbox backend cannot run on this machine."""


def get_backend(mode: SandboxMode = "auto") -> SandboxBackend:
    """Return the sandbox backend for ``mode``; ``auto`` never falls back silently."""
    if mode == "local":
        return LocalSandbox()
    if mode == "docker":
        if not docker_available():
            raise SandboxUnavailable("sandbox=docker but no Docker engine answers (run scripts/ensure-docker.sh)")
        return DockerSandbox()
    if mode == "auto":
        if docker_available():
            return DockerSandbox()
        log.warning(
            "sandbox.fallback_to_local",
            reason="no Docker engine answers",
            consequence="candidates run as rlimited local subprocesses: weaker isolation than Docker",
            fix="run scripts/ensure-docker.sh or set sandbox: docker",
        )
        return LocalSandbox()
    raise ValueError(f"unknown sandbox mode {mode!r} (expected docker, local or auto)")
