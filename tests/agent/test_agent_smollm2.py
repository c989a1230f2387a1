"""A smoke run of the whole graph with the embedded SmolLM2-135M (the default model on a fresh
machine): its plan may well be refused, but the run must end cleanly, with a reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_agent_e2e import repo  # noqa: F401 - fixture

from sorte.agent import Decision, service
from sorte.agent.journal import read_audit
from sorte.config import GitSettings, GuardianSettings, Settings

pytestmark = [pytest.mark.llm, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]


def test_embedded_model_runs_the_graph_to_its_end(repo: Path, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(
        data_dir=tmp_path / "var",
        strategies_dir=repo / "strategies",
        git=GitSettings(repo_root=repo),
        guardian=GuardianSettings(),
        sandbox="docker",
    )
    assert settings.llm.profile == "embedded"
    view = asyncio.run(service.ask(settings, "raise momentum's stop loss to 3%"))
    if view.status == "awaiting_approval":
        view = asyncio.run(service.decide(settings, view.run_id, Decision(approve=False)))
    assert view.status == "done", view
    assert view.outcome in {"rejected", "refused", "failed", "clarify", "answered"}, view
    assert view.reply
    assert read_audit(settings.data_dir, view.run_id)[-1]["node"] == "report"
