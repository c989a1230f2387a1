"""Settings, clients and fixtures shared by the status page's tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sorte.agent import journal
from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.web import create_app

RUN_ID = "20261122-201500-a1b2c3"
TOKEN = "s3cret-web-token"  # noqa: S105 - a test value, not a credential
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class StubLLM:
    """approve/reject hand the agent an LLM client; none of these tests gets as far as calling it."""

    async def close(self) -> None:
        return None


def with_web(settings: Settings, **web: Any) -> Settings:
    """``settings`` with the status page configured as given (the token by default, and TestClient's
    Host header, ``testserver``, named as this server's: production never allows it on its own)."""
    web.setdefault("token", TOKEN)
    web.setdefault("allowed_hosts", ["testserver"])
    return settings.model_copy(update={"web": settings.web.model_validate(web)})


def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, llm=StubLLM()))


def logged_in(c: TestClient) -> TestClient:
    r = c.post("/login", data={"token": TOKEN, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def require_chromium() -> None:
    """Skip when the browser is not installed, unless SORTE_REQUIRE_CHROMIUM=1 (then fail)."""
    import os

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists() and shutil.which(p.name) is None]
    if missing:
        reason = f"needs Debian's chromium and chromium-driver (missing: {', '.join(missing)})"
        if os.environ.get("SORTE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def deployed_project(folder: Path) -> tuple[Settings, int, int]:
    """A copy of the project with the baseline deployed, then a candidate promoted over it by a
    real commander (slot processes, shadow window, hand-over, watch): returns the settings (with
    the web token), the baseline's id and the candidate's id. Takes seconds."""
    from tests.commander.commander_env import commander_settings, deploy, head
    from tests.project_repo import copy_project

    repo = copy_project(folder / "repo")
    settings = with_web(commander_settings(repo, folder / "var"))
    baseline, _ = deploy(settings, head(repo), "web-baseline")
    candidate, _ = deploy(settings, new_candidate(repo, "candidate"), "web-candidate")
    return settings, baseline, candidate


def new_candidate(repo: Path, name: str) -> str:
    """A commit on branch ``name`` that trades like main (only a comment differs)."""
    from tests.project_repo import branch

    text = (repo / "strategies" / "momentum.py").read_text()
    return branch(repo, name, {"strategies/momentum.py": f"# {name}: same behaviour\n" + text})


def waiting_run_record(settings: Settings, pr_url: str = "https://github.com/o/r/pull/7") -> RunView:
    """A run record as the agent's journal keeps it, waiting for approval, with two audit lines (and one of
    another run); the agent's checkpoints know nothing of it, so deciding it is refused."""
    view = RunView(
        run_id=RUN_ID,
        request="raise the momentum stop loss to 3%",
        sender="telegram:42",
        status="awaiting_approval",
        strategy="momentum",
        plan_summary="stop_loss 0.02 -> 0.03",
        plan={"strategy": "momentum", "edits": [{"param": "stop_loss", "value": 0.03}]},
        branch=f"sorte/{RUN_ID}",
        diff="--- a/strategies/momentum.py\n+++ b/strategies/momentum.py\n-STOP = 0.02\n+STOP = 0.03\n",
        verdict={"ok": True, "gates": ["tests", "security", "benchmark"]},
        verdict_text="all gates passed",
        pr_url=pr_url,
    )
    journal.save_view(settings.data_dir, view)
    journal.audit(settings.data_dir, RUN_ID, "plan", "enter")
    journal.audit(settings.data_dir, RUN_ID, "plan", "leave", seconds=1.5)
    journal.audit(settings.data_dir, "another-run", "plan", "enter")
    return view
