"""The offline sandbox image: a near-empty filesystem, with the host's runtime bind-mounted read-only.

No image registry is reachable on these machines, so the image is ``docker import`` of a tar that
holds only a minimal ``/etc/passwd``, ``/etc/group`` and ``/etc/nsswitch.conf`` (root and the
sandbox user ``nobody``, so user look-ups work without exposing the host's account list). At run
time the host's /usr, /lib, /lib64, /lib32, /libx32, /bin, /sbin, the virtualenv (``sys.prefix``)
and the Python installation it points to (``sys.base_prefix``) are bind-mounted read-only.

The host's /etc is *not* mounted whole (it holds /etc/shadow, SSH host keys, the machine id and
configuration with credentials): only the entries of ``ETC_ENTRIES`` that exist on the host are,
each read-only at its own path (a symlink is mounted as its target): what the dynamic loader,
OpenSSL and Python's standard library read there. Docker adds its own /etc/hosts, /etc/hostname and
/etc/resolv.conf. Real users can build ``sandbox/Dockerfile`` from an official Python image instead.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

# Bump the tag whenever the image's contents change, so a cached older image is not reused.
OFFLINE_IMAGE = "sorte-sandbox:offline-2"

_HOST_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")

# The host /etc entries a Python process, pytest, bandit and semgrep need; missing ones are skipped.
ETC_ENTRIES = (
    "ld.so.cache",  # the dynamic loader's library index
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",  # targets of /usr/bin symlinks (Debian)
    "localtime",
    "timezone",
    "ssl/certs",  # CA bundle and hashed certificates (Debian, Alpine)
    "ssl/cert.pem",
    "ssl/openssl.cnf",
    "pki/tls/certs",  # CA bundle (Fedora, RHEL)
    "pki/tls/cert.pem",
    "pki/tls/openssl.cnf",
    "pki/ca-trust/extracted",
    "mime.types",  # mimetypes
    "protocols",  # socket.getprotobyname
    "services",  # socket.getservbyname
)

_PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"
_NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files\nservices: files\nprotocols: files\n"


def _image_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        etc = tarfile.TarInfo("etc")
        etc.type, etc.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(etc)
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("nsswitch.conf", _NSSWITCH)):
            data = text.encode()
            info = tarfile.TarInfo(f"etc/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure_offline_image(client: Any, tag: str = OFFLINE_IMAGE) -> str:
    """Create the offline image once (idempotent); return its tag."""
    import docker.errors

    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(_image_tar(), repository=repository, tag=version or "latest")
    client.images.get(tag)
    return tag


def _etc_mounts() -> dict[str, dict[str, str]]:
    """The allow-listed host /etc entries, keyed by their resolved source (a symlink is followed)."""
    mounts: dict[str, dict[str, str]] = {}
    for entry in ETC_ENTRIES:
        target = f"/etc/{entry}"
        if not os.path.exists(target):  # also skips a dangling symlink
            continue
        source = os.path.realpath(target)
        mounts.setdefault(source, {"bind": target, "mode": "ro"})
    return mounts


def host_runtime_mounts() -> dict[str, dict[str, str]]:
    """Read-only bind mounts that give the image a working Python (docker SDK ``volumes`` form)."""
    sources: list[str] = [d for d in _HOST_DIRS if Path(d).exists()]
    for prefix in (sys.prefix, sys.base_prefix):
        real = str(Path(prefix).resolve())
        if not any(real == s or real.startswith(s.rstrip("/") + "/") for s in sources):
            sources.append(real)
        if prefix != real and not any(prefix == s or prefix.startswith(s.rstrip("/") + "/") for s in sources):
            sources.append(prefix)
    mounts = {src: {"bind": src, "mode": "ro"} for src in sources}
    for src, spec in _etc_mounts().items():
        mounts.setdefault(src, spec)
    return mounts
