"""The same A/A deployment with every slot in a Docker container (docker SDK backend)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commander.engine import Commander
from tests.commander.commander_env import commander_settings, deploy, head, history, ledger_orders
from tests.needs_docker import require_docker
from tests.project_repo import copy_project

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def test_an_a_a_deploy_in_containers_promotes_and_keeps_the_book(tmp_path: Path) -> None:
    require_docker()
    repo = copy_project(tmp_path / "repo")
    settings = commander_settings(repo, tmp_path / "var", backend="docker")
    asyncio.run(Commander(settings).run(max_ticks=150))
    did, report = deploy(settings, head(repo), "aa-docker")
    h = history(settings)
    assert h.get(did).state == "active" and h.get(did).analysis["verdict"] == "pass"
    [handoff] = report.handoffs
    assert handoff.book_matches
    ids = [o["client_order_id"] for o in ledger_orders(settings)]
    assert ids and len(ids) == len(set(ids))
    from commander.docker_slots import DockerBackend

    assert DockerBackend(commander_dir=settings.data_dir / "commander").containers() == []
