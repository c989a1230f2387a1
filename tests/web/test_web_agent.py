"""A real agent run waiting for approval (scripted model answers through the real LLM client,
LibCST edits on a copy of the project, the guardian in the local sandbox), shown on its page and
approved with the page's button."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sorte.agent import runs as agent
from sorte.config import (
    GitSettings,
    GuardianSettings,
    LLMSettings,
    ProviderSettings,
    RoleSettings,
    RoleTarget,
    Settings,
)
from sorte.llm.client import LLM
from sorte.llm.providers.fake import FakeProvider
from sorte.web import create_app
from tests.project_repo import copy_project, git
from tests.web.web_env import BEARER, WRONG, logged_in, with_web

pytestmark = pytest.mark.slow

REQUEST = "raise momentum's stop loss to 3%"
INTENT = {"kind": "change", "strategy": "momentum", "language": "en", "summary": REQUEST}
PLAN = {
    "summary": "Raise momentum's stop loss to 3%",
    "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
}


def scripted(model: str, messages: list[dict[str, str]]) -> str:
    """The interpreter gets the intent, every other prompt the plan."""
    text = "\n".join(m["content"] for m in messages)
    return json.dumps(INTENT if "Classify it" in text else PLAN)


def make_llm(settings: Settings) -> LLM:
    return LLM(settings.llm, None, {"fake": FakeProvider("fake", settings.llm.providers["fake"], scripted)})


@pytest.fixture(scope="module")
def waiting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Any, str, Path]]:
    folder = tmp_path_factory.mktemp("web-agent")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # no stray ./sorte.yaml or .env
        for key in list(os.environ):
            if key.startswith("SORTE_"):
                mp.delenv(key)
        repo = copy_project(folder / "repo")
        fake = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
        settings = Settings(
            data_dir=folder / "var",
            strategies_dir=repo / "strategies",
            git=GitSettings(repo_root=repo),
            guardian=GuardianSettings(fail_fast=False),
            sandbox="local",  # Docker is not needed to reach the approval
            llm=LLMSettings(providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": fake, "coder": fake}),
        )
        settings = with_web(settings)
        llm = make_llm(settings)
        view = asyncio.run(agent.ask(settings, REQUEST, llm=llm))
        assert view.status == "awaiting_approval", view
        yield settings, llm, view.run_id, repo


def test_a_waiting_run_is_shown_and_approved_from_its_page(waiting: tuple[Settings, Any, str, Path]) -> None:
    from fastapi.testclient import TestClient

    settings, llm, run_id, repo = waiting
    c = TestClient(create_app(settings, llm=llm))
    assert f'href="/runs/{run_id}"' in c.get("/").text  # waiting for approval on the overview
    page = c.get(f"/runs/{run_id}").text
    expected = (REQUEST.replace("'", "&#39;"), "stop_loss", 'id="diff"', 'id="verdict', 'id="approve"', "<td>plan</td>")
    for text in expected:
        assert text in page, text

    main_before = git(repo, "rev-parse", "main")
    assert c.post(f"/api/v1/runs/{run_id}/approve", headers=WRONG).status_code == 401
    assert c.post(f"/runs/{run_id}/approve").status_code == 401  # not logged in
    assert agent.run(settings, run_id).status == "awaiting_approval"
    assert git(repo, "rev-parse", "main") == main_before

    logged_in(c)
    r = c.post(f"/runs/{run_id}/approve", data={"comment": "looks right"})
    assert r.status_code == 200 and str(r.url).endswith(f"/runs/{run_id}")
    assert "approved: it is done (merged)" in r.text
    assert 'id="approve"' not in r.text
    assert git(repo, "rev-parse", "main") != main_before
    assert "0.03" in git(repo, "show", "main:strategies/momentum.py")

    again = c.post(f"/api/v1/runs/{run_id}/reject", headers=BEARER)
    assert again.status_code == 409 and "not waiting for approval" in again.json()["detail"]
