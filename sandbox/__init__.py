"""Sandbox runners (Docker first, a local fallback) and the offline sandbox image.

Public surface::

    from sandbox import get_backend, SandboxLimits

    result = get_backend("auto").run(["python", "-m", "pytest", "--junitxml=/tmp/out/junit.xml"], worktree)
    result.exit_code, result.timed_out, result.oom_killed, result.outputs["junit.xml"]

The worktree is mounted read-only at the command's cwd; ``/tmp`` is private and writable, and
files written under ``/tmp/out`` (``$SORTE_OUTPUT_DIR``) come back in ``result.outputs``.

Long-lived confined processes that talk over stdin/stdout (the strategy worker) are started
with ``sandbox.confined.spawn(argv, box, backend="local" | "docker")``.
"""

from sandbox.contract import (
    SANDBOX_LABEL,
    SANDBOX_OUTPUT_DIR,
    SandboxBackend,
    SandboxLimits,
    SandboxResult,
    SandboxSpec,
)
from sandbox.docker_backend import DockerSandbox, cleanup_containers, docker_available, owned_containers
from sandbox.image import OFFLINE_IMAGE, ensure_offline_image
from sandbox.local_backend import LocalSandbox, can_unshare_network
from sandbox.select import SandboxMode, SandboxUnavailable, get_backend

__all__ = [
    "OFFLINE_IMAGE",
    "SANDBOX_LABEL",
    "SANDBOX_OUTPUT_DIR",
    "DockerSandbox",
    "LocalSandbox",
    "SandboxBackend",
    "SandboxLimits",
    "SandboxMode",
    "SandboxResult",
    "SandboxSpec",
    "SandboxUnavailable",
    "can_unshare_network",
    "cleanup_containers",
    "docker_available",
    "ensure_offline_image",
    "get_backend",
    "owned_containers",
]
