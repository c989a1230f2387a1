"""The offline sandbox image: an empty filesystem, with the host's runtime bind-mounted read-only.

No image registry is reachable on these machines, so the image is ``docker import`` of an empty
tar; at run time the host's /usr, /lib, /lib64, /bin, /etc, the virtualenv (``sys.prefix``) and the
Python installation it points to (``sys.base_prefix``) are bind-mounted read-only (see DESIGN.md).
Real users can build ``sandbox/Dockerfile`` from an official Python image instead.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from typing import Any

OFFLINE_IMAGE = "sorte-sandbox:offline"

_HOST_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc")


def _empty_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    return buf.getvalue()


def ensure_offline_image(client: Any, tag: str = OFFLINE_IMAGE) -> str:
    """Create the empty offline image once (idempotent); return its tag."""
    import docker.errors

    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(_empty_tar(), repository=repository, tag=version or "latest")
    client.images.get(tag)
    return tag


def host_runtime_mounts() -> dict[str, dict[str, str]]:
    """Read-only bind mounts that give the empty image a working Python (docker SDK ``volumes`` form)."""
    sources: list[str] = [d for d in _HOST_DIRS if Path(d).exists()]
    for prefix in (sys.prefix, sys.base_prefix):
        real = str(Path(prefix).resolve())
        if not any(real == s or real.startswith(s.rstrip("/") + "/") for s in sources):
            sources.append(real)
        if prefix != real and not any(prefix == s or prefix.startswith(s.rstrip("/") + "/") for s in sources):
            sources.append(prefix)
    return {src: {"bind": src, "mode": "ro"} for src in sources}
