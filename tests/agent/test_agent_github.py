"""An approved run with GitHub configured: its branch is pushed (a local bare remote), its pull
request opened through PyGithub against a local server speaking the REST API, then merged; a
resumed publish opens no second pull request."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from project_repo import git
from test_agent_e2e import STOP_LOSS, Model, llm_for, repo, settings  # noqa: F401 - fixtures

from sorte.agent import Decision, runs
from sorte.config import GitHubSettings, Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "github"))
from fake_github_api import FakeGitHubServer  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN = "ghp_" + "t" * 36


def test_approved_run_opens_one_pull_request(settings: Settings, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "push", "-q", str(remote), "main")
    intent = {"kind": "change", "strategy": "momentum", "language": "en", "summary": "stop loss"}
    model = Model(intent, [STOP_LOSS])
    with FakeGitHubServer(TOKEN) as api:
        api.add_repo("acme/strategies")
        gh = GitHubSettings(repo="acme/strategies", token=TOKEN, api_url=api.base_url, remote_url=str(remote))
        settings = settings.model_copy(update={"github": gh})
        view = asyncio.run(runs.ask(settings, "raise momentum's stop loss to 3%", llm=llm_for(settings, model)))
        assert view.status == "awaiting_approval", view
        api.repos["acme/strategies"].add(view.branch)  # GitHub sees the branch once it is pushed

        done = asyncio.run(runs.decide(settings, view.run_id, Decision(approve=True), llm=llm_for(settings, model)))
        assert done.outcome == "merged" and done.pr_url.endswith("/pull/1"), done
        assert git(remote, "rev-parse", view.branch) == view.commit
        pr = api.pulls["acme/strategies"][0]
        assert pr["head"]["ref"] == view.branch and pr["title"] == "momentum.stop_loss: 0.02 → 0.03"
        assert "raise momentum's stop loss to 3%" in pr["body"] and "Guardian verdict" in pr["body"]
        assert TOKEN not in json.dumps(done.model_dump()) and TOKEN not in (repo / ".git" / "config").read_text()

        # A resumed publish (the same run again) finds the open pull request instead of a second one.
        from sorte.agent.nodes.publishing import open_pull_request
        from sorte.agent.state import AgentState

        state = {"run_id": view.run_id, "branch": view.branch, "request": view.request, "plan": view.plan}
        state["verdict"] = view.verdict
        again = open_pull_request(settings, AgentState.model_validate(state))
        assert again["pr_number"] == 1 and api.posts() == 1
