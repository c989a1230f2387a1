"""The one rule for tests that need a Docker engine: skip without one, fail under CI's SORTE_REQUIRE_DOCKER=1."""

from __future__ import annotations

import os

import pytest

from sandbox import docker_available


def require_docker() -> None:
    if docker_available():
        return
    if os.environ.get("SORTE_REQUIRE_DOCKER") == "1":
        pytest.fail("SORTE_REQUIRE_DOCKER=1 but no Docker engine answers (run scripts/ensure-docker.sh)")
    pytest.skip("no Docker engine answers (run scripts/ensure-docker.sh)")
