"""Docker backend: one locked-down, throw-away container per command (docker SDK for Python)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from sandbox.contract import (
    OUT_TOKEN,
    SANDBOX_LABEL,
    SANDBOX_OUTPUT_DIR,
    SANDBOX_TMP,
    SANDBOX_WORKTREE,
    SandboxLimits,
    SandboxResult,
    coerce_limits,
    fixed_env,
    read_outputs,
    truncate_text,
)
from sandbox.image import OFFLINE_IMAGE, ensure_offline_image, host_runtime_mounts
from sandbox.processes import pid_alive

log = structlog.get_logger(__name__)

SANDBOX_UID = 65534
_OWNER_LABEL = f"{SANDBOX_LABEL}.owner_pid"
_live: set[str] = set()
_live_lock = threading.Lock()


def docker_client(timeout: float = 5.0) -> Any:
    """A docker SDK client from the environment (DOCKER_HOST or the default socket)."""
    import docker

    return docker.from_env(timeout=timeout)


def docker_available() -> bool:
    """True when a Docker engine answers."""
    try:
        client = docker_client(timeout=3.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def cleanup_containers(client: Any | None = None, *, all_owners: bool = False) -> int:
    """Remove leftover sandbox containers (by label): those whose owning process is gone, or all.

    Returns how many containers were removed.
    """
    own = client is None
    client = client or docker_client()
    removed = 0
    try:
        for container in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}, ignore_removed=True):
            owner = container.labels.get(_OWNER_LABEL, "")
            # This process's own containers are removed by the run that made them (or at exit):
            # another thread's container may be listed here before that run records it as live.
            if not all_owners and owner.isdigit() and (int(owner) == os.getpid() or pid_alive(int(owner))):
                continue
            try:
                container.remove(force=True)
                removed += 1
            except Exception as exc:  # already gone, or being removed
                log.debug("sandbox.cleanup_skip", container=container.short_id, error=str(exc))
    finally:
        if own:
            client.close()
    return removed


def owned_containers(pid: int | None = None) -> list[str]:
    """Ids of the sandbox containers that process ``pid`` (default: this one) started and still has."""
    client = docker_client()
    try:
        label = f"{_OWNER_LABEL}={pid if pid is not None else os.getpid()}"
        found = client.containers.list(all=True, filters={"label": [SANDBOX_LABEL, label]}, ignore_removed=True)
        return [c.id for c in found]
    finally:
        client.close()


def _remove_live_at_exit() -> None:
    with _live_lock:
        ids = list(_live)
    if not ids:
        return
    try:
        client = docker_client()
    except Exception:
        return
    for cid in ids:
        with contextlib.suppress(Exception):
            client.containers.get(cid).remove(force=True)
    client.close()


atexit.register(_remove_live_at_exit)


class DockerSandbox:
    """Runs commands in a container with no network, a read-only root and the worktree read-only."""

    name = "docker"

    def __init__(self, image: str = OFFLINE_IMAGE, client: Any | None = None, offline_image: bool = True) -> None:
        self.image = image
        self.offline_image = offline_image
        self._client = client
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self._cancelled = threading.Event()

    def cancel_all(self) -> None:
        """Kill this instance's running containers; later runs return at once as cancelled."""
        self._cancelled.set()
        with self._active_lock:
            ids = list(self._active)
        for cid in ids:
            with contextlib.suppress(Exception):  # already gone
                self.client.containers.get(cid).kill()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(timeout=30.0)
        return self._client

    def prepare(self) -> None:
        """Build the offline image if needed and remove containers left by dead Sorte processes."""
        if self.offline_image:
            ensure_offline_image(self.client, self.image)
        cleanup_containers(self.client)

    def run(
        self, command: list[str], worktree: Path, limits: SandboxLimits | dict[str, Any] | None = None
    ) -> SandboxResult:
        import docker.errors
        from docker.types import LogConfig, Ulimit

        limits = coerce_limits(limits)
        command = [a.replace(OUT_TOKEN, SANDBOX_OUTPUT_DIR) for a in command]
        worktree = Path(worktree).resolve()
        if not worktree.is_dir():
            raise FileNotFoundError(f"worktree {worktree} is not a directory")
        if self._cancelled.is_set():
            return SandboxResult(backend=self.name, exit_code=-9, cancelled=True)
        self.prepare()

        out_host = Path(tempfile.mkdtemp(prefix="sorte-sandbox-out-"))
        os.chmod(out_host, 0o755)
        if os.geteuid() == 0:
            os.chown(out_host, SANDBOX_UID, SANDBOX_UID)
        else:
            os.chmod(out_host, 0o777)

        volumes = host_runtime_mounts() if self.offline_image else {}
        volumes[str(worktree)] = {"bind": SANDBOX_WORKTREE, "mode": "ro"}
        volumes[str(out_host)] = {"bind": SANDBOX_OUTPUT_DIR, "mode": "rw"}
        extra_path = [str(Path(sys.prefix) / "bin")] if self.offline_image else []
        env = fixed_env(SANDBOX_WORKTREE, SANDBOX_TMP, SANDBOX_OUTPUT_DIR, extra_path, limits.env)
        fsize = limits.max_outputs_bytes + limits.tmpfs_bytes

        container = None
        start = time.monotonic()
        timed_out = False
        try:
            container = self.client.containers.create(
                self.image,
                command=list(command),
                detach=True,
                user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                working_dir=SANDBOX_WORKTREE,
                environment=env,
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit=limits.memory_bytes,
                memswap_limit=limits.memory_bytes,
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                ulimits=[Ulimit(name="fsize", soft=fsize, hard=fsize)],
                tmpfs={SANDBOX_TMP: f"rw,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777"},
                volumes=volumes,
                labels={SANDBOX_LABEL: "1", _OWNER_LABEL: str(os.getpid())},
                ipc_mode="none",
                # Bound what the engine keeps of stdout/stderr (json-file keeps the newest part).
                log_config=LogConfig(
                    type=LogConfig.types.JSON,
                    config={"max-size": str(2 * limits.max_stream_bytes), "max-file": "1"},
                ),
            )
            with _live_lock:
                _live.add(container.id)
            with self._active_lock:
                self._active.add(container.id)
            if self._cancelled.is_set():
                return SandboxResult(backend=self.name, exit_code=-9, cancelled=True)
            container.start()
            try:
                status = container.wait(timeout=limits.timeout_s)
                exit_code = int(status.get("StatusCode", -1))
            except Exception as exc:  # requests' ReadTimeout / ConnectionError on timeout
                log.warning("sandbox.timeout", backend=self.name, timeout_s=limits.timeout_s, error=type(exc).__name__)
                timed_out = True
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
                exit_code = -9
            duration = time.monotonic() - start
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled", False))
            stdout, out_cut = truncate_text(container.logs(stdout=True, stderr=False), limits.max_stream_bytes)
            stderr, err_cut = truncate_text(container.logs(stdout=False, stderr=True), limits.max_stream_bytes)
            outputs, outputs_cut = read_outputs(out_host, limits)
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
                network_isolated=True,
                cancelled=self._cancelled.is_set(),
            )
        finally:
            if container is not None:
                with self._active_lock:
                    self._active.discard(container.id)
                try:
                    container.remove(force=True)
                except docker.errors.NotFound:
                    pass
                except Exception as exc:
                    log.error("sandbox.remove_failed", container=container.short_id, error=str(exc))
                with _live_lock:
                    _live.discard(container.id)
            shutil.rmtree(out_host, ignore_errors=True)
