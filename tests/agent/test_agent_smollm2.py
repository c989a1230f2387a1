"""A smoke run of the whole graph with the embedded SmolLM2-135M (the default model on a fresh
machine). The README's request needs no model (the interpreter reads it); a request the
interpreter cannot place goes to the model tier, whose guess may be anything: the run must
end cleanly, with a reply, and never with a change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_agent_e2e import repo  # noqa: F401 - fixture

from sorte.agent import Decision, runs
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
    view = asyncio.run(runs.ask(settings, "raise momentum's stop loss to 3%"))
    assert view.status == "awaiting_approval", view
    view = asyncio.run(runs.decide(settings, view.run_id, Decision(approve=False)))
    assert (view.status, view.outcome) == ("done", "rejected"), view

    unsure = asyncio.run(runs.ask(settings, "hmm, and that momentum thing from yesterday?"))
    assert unsure.status == "done" and unsure.outcome in {"clarify", "answered"}, unsure
    assert unsure.reply and not unsure.branch, "a guess never becomes a change"
    assert read_audit(settings.data_dir, unsure.run_id)[-1]["node"] == "report"
