"""Docker slot backend: each slot's ``python -m commander.slot`` in a long-lived container.

The container runs the host's own virtualenv python (bind-mounted read-only, as the guardian
sandbox does: ``sandbox.image.host_runtime_mounts``) in the offline image, so no registry is
needed. Every path the slot uses is mounted at its host path, so ``SlotSpec`` means the same
inside and outside: the worktree read-only, the commander directory read-write (the SQLite
ledger in WAL mode and the lease file live there: WAL's ``-shm`` file is shared memory, which
works across the bind mount because both sides run on the same kernel), and the socket's
directory read-write (connecting to a Unix socket needs write access to it). The container
runs as the commander's uid:gid, so what it writes stays the commander's, and has no network:
the slot talks to the commander only over the socket, which is also how it receives its
settings (the secrets trading needs), so no secret environment variable is passed in.

The slot never runs strategy code itself: each slot has a strategy worker in a second container
(``_start_worker``) that holds only a copy of the deployment's strategy files, runs as uid
65534 with no network, no capability and a read-only root, and sees none of the slot's mounts
(not the ledger, the lease or the commander's socket). The two share one folder, where the
worker listens on a Unix socket and the slot asks it for signals.

``wait`` returns the container's exit status (137 after ``kill``), then copies the
container's output into ``spec.log_file`` and removes the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from commander.backends import SlotSpec, slot_environment
from sandbox.confined import environment as confined_environment
from sandbox.docker_backend import SANDBOX_UID, docker_client
from sandbox.image import OFFLINE_IMAGE, ensure_offline_image, host_runtime_mounts
from sorte.runtime.strategy_host import BOOT, prepare_box

log = structlog.get_logger(__name__)

SLOT_LABEL = "sorte.slot"
DIR_LABEL = "sorte.slot.commander_dir"
DEPLOYMENT_LABEL = "sorte.slot.deployment"
WORKER_LABEL = "sorte.slot.worker.commander_dir"
WORKER_TMP_BYTES = 64 * 1024 * 1024
KILLED = 137  # 128 + SIGKILL: what docker reports for a killed container (also used when it vanished)
TMP_BYTES = 256 * 1024 * 1024


def dir_hash(commander_dir: Path) -> str:
    return hashlib.sha256(str(commander_dir).encode()).hexdigest()[:8]


def container_name(spec: SlotSpec) -> str:
    return f"sorte-slot-{spec.slot}-{dir_hash(Path(spec.commander_dir).resolve())}-{spec.deployment_id}"


def _ignorable(exc: Exception) -> bool:
    """A kill or remove that failed because the container has already ended or gone."""
    import docker.errors

    if isinstance(exc, docker.errors.NotFound):
        return True
    if isinstance(exc, docker.errors.APIError):
        text = str(exc).lower()
        return exc.status_code == 409 or "not running" in text or "already in progress" in text
    return False


class DockerProcess:
    def __init__(self, container: Any, spec: SlotSpec, worker: Any = None) -> None:
        self.container = container
        self.worker = worker  # the slot's strategy worker: its own container
        self.spec = spec
        self.ident = f"container {container.short_id}"
        self._status: int | None = None
        self._lock = threading.Lock()  # one waiter collects the logs and removes the container

    async def wait(self) -> int:
        return await asyncio.to_thread(self._wait)

    def _wait(self) -> int:
        import docker.errors

        try:
            status = int(self.container.wait().get("StatusCode", KILLED))
        except docker.errors.NotFound:  # removed under us (cleanup, or a second waiter)
            status = KILLED
        with self._lock:
            if self._status is None:
                self._status = status
                self._collect()
        return self._status

    def _collect(self) -> None:
        """Append the container's output to the slot's log file, then remove the container."""
        try:
            output = self.container.logs(stdout=True, stderr=True)
        except Exception as exc:
            output = f"(logs of {self.ident} unavailable: {exc})\n".encode()
        try:
            self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.spec.log_file, "ab") as fh:
                fh.write(output)
        except OSError as exc:
            log.warning("slot.log_copy_failed", container=self.ident, error=str(exc))
        self._remove()

    def _remove(self) -> None:
        for container in (self.container, self.worker):
            if container is None:
                continue
            try:
                container.remove(force=True)
            except Exception as exc:
                if not _ignorable(exc):
                    log.warning("slot.remove_failed", container=container.short_id, error=str(exc))

    def kill(self) -> None:
        try:
            self.container.kill()
        except Exception as exc:
            if not _ignorable(exc):
                raise
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.kill()


class DockerBackend:
    """Slots in containers: offline image, host runtime read-only, no network, commander's uid."""

    name = "docker"

    def __init__(
        self,
        image: str = OFFLINE_IMAGE,
        client: Any | None = None,
        *,
        commander_dir: Path | None = None,
        mem_limit: str | int = "2g",
        pids_limit: int = 512,
        extra_mounts: Mapping[str | Path, str] | None = None,
    ) -> None:
        """``extra_mounts`` maps host paths to "ro" or "rw", mounted at the same path: the
        market data files of ``runtime.data`` and the data directory's ``control.json`` are
        outside the worktree and commander directory, so a slot sees them only through these."""
        self.image = image
        self._client = client
        self.commander_dir = Path(commander_dir).resolve() if commander_dir is not None else None
        self.mem_limit = mem_limit
        self.pids_limit = pids_limit
        self.extra_mounts = {str(Path(p).resolve()): mode for p, mode in (extra_mounts or {}).items()}
        self._image_ready = False
        self._image_lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(timeout=60.0)
        return self._client

    def _ensure_image(self) -> None:
        with self._image_lock:
            if not self._image_ready:
                ensure_offline_image(self.client, self.image)
                self._image_ready = True

    def _volumes(self, spec: SlotSpec) -> dict[str, dict[str, str]]:
        volumes = host_runtime_mounts()
        for mount, mode in self.extra_mounts.items():
            volumes[mount] = {"bind": mount, "mode": mode}
        # Each at the path the slot is given (a symlinked path still names the real directory).
        for path, mode in ((spec.worktree, "ro"), (spec.commander_dir, "rw"), (spec.socket.parent, "rw")):
            volumes[str(Path(path).resolve())] = {"bind": str(Path(path).absolute()), "mode": mode}
        return volumes

    def _remove_named(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True)
        except Exception as exc:
            if not _ignorable(exc):
                raise

    def _run(self, spec: SlotSpec) -> DockerProcess:
        from docker.types import LogConfig

        self._ensure_image()
        commander_dir = Path(spec.commander_dir).resolve()
        if self.commander_dir is None:
            self.commander_dir = commander_dir  # so that cleanup() finds what this backend started
        name = container_name(spec)
        self._remove_named(name)
        self._remove_named(name + "-worker")
        worker, socket = self._start_worker(spec, name + "-worker", commander_dir)
        container = self.client.containers.run(
            self.image,
            command=[sys.executable, *spec.argv(), "--strategy-socket", str(socket)],
            name=name,
            detach=True,
            working_dir=str(Path(spec.worktree).absolute()),
            environment=slot_environment(spec),
            volumes=self._volumes(spec),
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={TMP_BYTES},mode=1777"},
            user=f"{os.getuid()}:{os.getgid()}",
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            pids_limit=self.pids_limit,
            mem_limit=self.mem_limit,
            labels={
                SLOT_LABEL: spec.slot,
                DIR_LABEL: str(commander_dir),
                DEPLOYMENT_LABEL: str(spec.deployment_id),
            },
            # Copied into spec.log_file when the slot ends; bounded while it runs.
            log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "64m", "max-file": "1"}),
        )
        log.info("slot.container_started", slot=spec.slot, deployment=spec.deployment_id, container=container.short_id)
        return DockerProcess(container, spec, worker)

    def _start_worker(self, spec: SlotSpec, name: str, commander_dir: Path) -> tuple[Any, Path]:
        """The slot's strategy worker in a container of its own: the deployment's strategy files
        copied read-only, no network, uid 65534, no capability, none of the slot's mounts (not the
        ledger, the lease or the commander's socket). It listens on a Unix socket in a folder that
        only it and its slot share."""
        from docker.types import Ulimit

        shared = Path(spec.socket.parent).absolute() / f"{spec.slot}-worker"
        box = Path(spec.socket.parent).absolute() / f"{spec.slot}-box"
        for path in (shared, box):
            shutil.rmtree(path, ignore_errors=True)
        prepare_box(Path(spec.worktree) / "strategies", box)
        shared.mkdir()
        if os.geteuid() == 0:
            os.chown(shared, SANDBOX_UID, SANDBOX_UID)
        else:
            shared.chmod(0o777)
        socket = shared / "worker.sock"
        worker = self.client.containers.run(
            self.image,
            command=[sys.executable, "-I", "-c", BOOT, "/box/lib", "--listen", str(socket)],
            name=name,
            detach=True,
            working_dir="/box",
            environment=confined_environment(),
            volumes={
                **host_runtime_mounts(),
                str(box.resolve()): {"bind": "/box", "mode": "ro"},
                str(shared.resolve()): {"bind": str(shared), "mode": "rw"},
            },
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={WORKER_TMP_BYTES},mode=1777"},
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="none",
            pids_limit=64,
            mem_limit=self.mem_limit,
            ulimits=[Ulimit(name="fsize", soft=WORKER_TMP_BYTES, hard=WORKER_TMP_BYTES)],
            labels={WORKER_LABEL: str(commander_dir), SLOT_LABEL + ".of": spec.slot},
        )
        log.info("slot.worker_started", slot=spec.slot, deployment=spec.deployment_id, container=worker.short_id)
        return worker, socket

    async def start(self, spec: SlotSpec) -> DockerProcess:
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(self._run, spec)

    def _remove_labelled(self, commander_dir: str | None) -> int:
        removed = 0
        found = [
            (c, label)
            for label in (DIR_LABEL, WORKER_LABEL)
            for c in self.client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        ]
        for container, label in found:
            if commander_dir is not None and container.labels.get(label) != commander_dir:
                continue
            try:
                container.remove(force=True)
                removed += 1
            except Exception as exc:
                if not _ignorable(exc):
                    log.warning("slot.cleanup_failed", container=container.short_id, error=str(exc))
        return removed

    def cleanup(self) -> None:
        """Remove (force) the slot containers of this backend's commander directory."""
        if self.commander_dir is None:
            return
        removed = self._remove_labelled(str(self.commander_dir))
        if removed:
            log.info("slot.cleanup", commander_dir=str(self.commander_dir), removed=removed)

    def cleanup_all(self) -> int:
        """Remove every Sorte slot container, whatever its commander directory (tests)."""
        return self._remove_labelled(None)

    def containers(self) -> list[Any]:
        """The slot containers of this backend's commander directory (running or not)."""
        if self.commander_dir is None:
            return []
        found = self.client.containers.list(all=True, filters={"label": DIR_LABEL}, ignore_removed=True)
        return [c for c in found if c.labels.get(DIR_LABEL) == str(self.commander_dir)]
