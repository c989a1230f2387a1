"""Which slot backend a commander uses: processes on this host, or containers. Its own module so
that the backends do not import each other (the Docker one builds on the local one's pieces)."""

from __future__ import annotations

from pathlib import Path

from commander.backends import LocalBackend, SlotBackend


def make_backend(name: str, commander_dir: Path, mounts: dict[str, str] | None = None) -> SlotBackend:
    """``mounts``: host paths a containerised slot also needs (replay files, the control file's folder)."""
    if name == "local":
        return LocalBackend()
    if name == "docker":
        from commander.docker_slots import DockerBackend

        extra: dict[str | Path, str] = {path: mode for path, mode in (mounts or {}).items()}
        return DockerBackend(commander_dir=commander_dir, extra_mounts=extra)
    raise ValueError(f"unknown slot backend {name!r}: use local or docker")
