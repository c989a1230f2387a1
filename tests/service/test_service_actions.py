"""Actions through the service layer: roles checked first, one audit line each, refusals change nothing."""

from __future__ import annotations

import asyncio
import json

import pytest

import sorte.service as service
from commander.deployment import DeploymentError
from commander.status import commander_dir
from sorte.agent.runs import AgentError, _notify
from sorte.agent.views import RunView
from sorte.config import Settings, TelegramSettings
from sorte.service.access import Principal

OPERATOR = Principal(channel="telegram", id="42", role="operator")
VIEWER = Principal(channel="telegram", id="7", role="viewer")


def control(settings: Settings) -> dict:
    path = settings.data_dir / "control.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_pause_and_resume_need_an_operator_and_are_audited(settings: Settings) -> None:
    with pytest.raises(service.Forbidden, match="pause needs the operator role; telegram:7 is a viewer"):
        service.pause(settings, VIEWER)
    assert control(settings) == {}
    result = service.pause(settings, OPERATOR)
    assert result.ok and control(settings) == {"paused": True}
    assert service.overview(settings).paused
    service.resume(settings, OPERATOR)
    assert control(settings) == {"paused": False} and not service.overview(settings).paused
    trail = [(a["who"], a["action"], a["ok"]) for a in service.read_audit(settings.data_dir)]
    assert trail == [("telegram:7", "pause", False), ("telegram:42", "pause", True), ("telegram:42", "resume", True)]


def test_rollback_refusals_write_nothing(settings: Settings) -> None:
    with pytest.raises(service.Forbidden):
        asyncio.run(service.rollback(settings, VIEWER))
    with pytest.raises(DeploymentError, match="positive number"):
        asyncio.run(service.rollback(settings, OPERATOR, to=0))
    with pytest.raises(DeploymentError, match="nothing is active"):
        asyncio.run(service.rollback(settings, OPERATOR))
    assert not commander_dir(settings.data_dir).exists()
    last = service.read_audit(settings.data_dir)[-1]
    assert (last["action"], last["ok"]) == ("rollback", False) and "nothing is active" in last["error"]


def test_deciding_a_run_that_does_not_wait_is_refused(settings: Settings) -> None:
    with pytest.raises(service.Forbidden):
        asyncio.run(service.approve(settings, VIEWER, "r1"))
    with pytest.raises(AgentError, match="not waiting for approval"):
        asyncio.run(service.reject(settings, OPERATOR, "r1"))
    assert [a["ok"] for a in service.read_audit(settings.data_dir)] == [False, False]


def test_who_may_command_the_agent() -> None:
    s = Settings(telegram={"users": {"42": "operator", "7": "viewer"}})
    assert s.may_command("cli:local") and s.may_command("telegram:42")
    assert not s.may_command("telegram:7") and not s.may_command("telegram:99") and not s.may_command("web:token")
    assert Settings(web={"token": "x"}).may_command("web:token")


def test_a_users_own_role_wins_over_the_chats() -> None:
    t = TelegramSettings(users={"1": "operator", "2": "viewer"}, chats={"-100": "viewer", "-200": "operator"})
    assert t.role_of(1, -100) == "operator" and t.role_of(2, -200) == "viewer"
    assert t.role_of(3, -200) == "operator" and t.role_of(3, -300) is None and t.role_of(None, None) is None


def test_runs_that_need_operators_become_alerts(settings: Settings) -> None:
    _notify(settings, RunView(run_id="r1", status="awaiting_approval", plan_summary="stop loss 3%"))
    _notify(settings, RunView(run_id="r2", status="done", outcome="failed", request="make it better"))
    _notify(settings, RunView(run_id="r3", status="done", outcome="merged", plan_summary="fast 12"))
    _notify(settings, RunView(run_id="r4", status="done", outcome="answered"))
    got = [(a.kind, a.fields.get("run_id"), a.message) for a in service.alerts(settings)]
    assert got == [
        ("approval_needed", "r1", "run r1 waits for approval: stop loss 3%"),
        ("verdict_failed", "r2", "run r2 failed: make it better"),
        ("run_finished", "r3", "run r3 merged: fast 12"),
    ]
