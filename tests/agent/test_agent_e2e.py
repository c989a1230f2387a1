"""The agent graph end to end with scripted model answers (the fake provider through the real LLM
client), real LibCST edits on git branches of a copy of this project, the guardian in the real
Docker sandbox, approval through the LangGraph interrupt, merge and the deploy request."""

from __future__ import annotations

import ast
import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import copy_project, git

from commander import DeploymentHistory
from commander.status import HISTORY_FILE, commander_dir
from knowledge import open_store
from sorte.agent import Decision, runs
from sorte.agent.journal import read_audit
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

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MOMENTUM = "strategies/momentum.py"
STOP_LOSS = {
    "summary": "Raise momentum's stop loss to 3%",
    "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
}
NO_REASONS = {
    "summary": "Simplify momentum's decision",
    "ops": [
        {
            "op": "replace_body",
            "file": MOMENTUM,
            "function": "decide",
            "body": "side = np.zeros(len(f['close']), dtype=int)\n"
            "return np.zeros(len(side)), side, np.full(len(side), '')\n",
        }
    ],
}
OS_SYSTEM = {
    "summary": "Call os.system in momentum",
    "ops": [
        {
            "op": "replace_body",
            "file": MOMENTUM,
            "function": "lookback",
            "body": "import os\nos.system('true')\nreturn max(p.fast, p.slow) + 1\n",
        }
    ],
}


class Model:
    """Scripted answers: the interpreter's Intent, then the coder's plans in order."""

    def __init__(self, intent: dict, plans: list[dict]) -> None:
        self.intent, self.plans, self.prompts = intent, list(plans), []

    def __call__(self, model: str, messages: list[dict[str, str]]) -> str:
        text = "\n".join(m["content"] for m in messages)
        self.prompts.append(text)
        if "Classify it" in text:
            return json.dumps(self.intent)
        plan = self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]
        return json.dumps(plan)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_docker()
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture()
def settings(repo: Path, tmp_path: Path) -> Settings:
    fake = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
    return Settings(
        data_dir=tmp_path / "var",
        strategies_dir=repo / "strategies",
        git=GitSettings(repo_root=repo),
        guardian=GuardianSettings(fail_fast=False),
        sandbox="docker",
        llm=LLMSettings(providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": fake, "coder": fake}),
    )


def llm_for(settings: Settings, model: Model) -> LLM:
    return LLM(settings.llm, None, {"fake": FakeProvider("fake", settings.llm.providers["fake"], model)})


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("text", "language"),
    [("aumenta o stop loss do momentum para 3%", "pt"), ("raise momentum's stop loss to 3%", "en")],
)
def test_command_to_merged_change_and_deploy_request(settings: Settings, repo: Path, text: str, language: str) -> None:
    model = Model({"kind": "change", "strategy": "momentum", "language": language, "summary": text}, [STOP_LOSS])
    llm = llm_for(settings, model)
    main_before = git(repo, "rev-parse", "main")
    view = run(runs.ask(settings, text, llm=llm))
    assert view.status == "awaiting_approval", view
    assert view.branch.startswith(f"sorte/{view.run_id}") and view.commit
    assert "stop_loss" in view.diff and view.verdict["gates"]
    assert git(repo, "rev-parse", "main") == main_before, "nothing merged before approval"
    pending = run(runs.pending_approval(settings, view.run_id, llm=llm))
    assert pending["summary"] == "momentum.stop_loss: 0.02 → 0.03" and "Verdict" in pending["verdict"]
    assert "momentum.stop_loss: 0.02 → 0.03" in pending["question"], "the approval restates the reading"
    assert model.prompts == [], "the interpreter read the request and the plan without a model"

    done = run(runs.decide(settings, view.run_id, Decision(approve=True, by="cli:test"), llm=llm))
    assert done.status == "done" and done.outcome == "merged", done
    assert git(repo, "rev-parse", "main") == done.merged_sha != main_before
    assert "0.03" in git(repo, "show", "main:strategies/momentum.py")
    assert done.deploy_id == f"deploy-{view.run_id}"
    with DeploymentHistory(commander_dir(settings.data_dir) / HISTORY_FILE) as history:
        [deployment] = history.list()
    assert (deployment.commit, deployment.state, deployment.slot) == (done.merged_sha, "requested", "blue")
    lesson = open_store(settings.knowledge, settings.data_dir).get(f"run-{view.run_id}")
    assert lesson is not None and lesson.outcome == "merged" and lesson.language == language
    assert ("Feito" if language == "pt" else "Done") in done.reply
    nodes = [r["node"] for r in read_audit(settings.data_dir, view.run_id) if r["event"] == "leave"]
    assert nodes[:5] == ["receive", "interpret", "recall", "plan", "edit"]
    assert nodes[-4:] == ["publish", "deploy", "learn", "report"]
    git(repo, "reset", "-q", "--hard", main_before)  # the next case starts from the same main
    git(repo, "update-ref", "refs/heads/main", main_before)


def original_body(repo: Path, function: str) -> str:
    source = (repo / "strategies/momentum.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == function)
    lines = source.splitlines(keepends=True)[node.body[0].lineno - 1 : node.end_lineno]
    return textwrap.dedent("".join(lines))


def test_failed_verdict_is_repaired_on_the_second_attempt(settings: Settings, repo: Path) -> None:
    intent = {"kind": "change", "strategy": "momentum", "language": "en", "summary": "simplify"}
    # The repair sees the branch's (broken) source and the failures, and restores a valid decide.
    restore = {
        "summary": "Give momentum's decisions their reasons back",
        "ops": [
            {"op": "replace_body", "file": MOMENTUM, "function": "decide", "body": original_body(repo, "decide")},
            *STOP_LOSS["ops"],
        ],
    }
    model = Model(intent, [NO_REASONS, restore])
    view = run(runs.ask(settings, "simplify momentum's logic, then keep it valid", llm=llm_for(settings, model)))
    assert view.status == "awaiting_approval", view
    assert view.attempts == 2 and view.pass_at["1"] is False, view.pass_at
    assert any("tests: fail" in p for p in model.prompts), "the failures went back to the planner"
    run(runs.decide(settings, view.run_id, Decision(approve=False), llm=llm_for(settings, model)))
    final = runs.run(settings, view.run_id)
    assert final.outcome == "rejected"
    lesson = open_store(settings.knowledge, settings.data_dir).get(f"run-{view.run_id}")
    assert lesson is not None and lesson.outcome == "rejected" and lesson.strategy == "momentum"

    # The next plan for momentum is shown what this run taught.
    follow = Model(intent, [OS_SYSTEM])
    run(runs.ask(settings, "simplify momentum's logic once more", llm=llm_for(settings, follow)))
    assert any("rejected by the trader" in p for p in follow.prompts if "Sorte's coder" in p)


COMMANDER = {
    "summary": "Edit the commander",
    "ops": [{"op": "replace_body", "file": "commander/rollout.py", "function": "promote", "body": "return True\n"}],
}


@pytest.mark.parametrize(
    ("text", "plan", "needle"),
    [
        ("change momentum's logic to call a helper", OS_SYSTEM, "'os'"),
        ("change the logic so that deployments always promote", COMMANDER, "commander"),
    ],
)
def test_unsafe_request_is_refused_and_nothing_changes(
    settings: Settings, repo: Path, text: str, plan: dict, needle: str
) -> None:
    intent = {"kind": "change", "strategy": "momentum", "language": "en", "summary": text}
    main_before = git(repo, "rev-parse", "main")
    branches_before = git(repo, "branch", "--list", "sorte/*")
    view = run(runs.ask(settings, text, llm=llm_for(settings, Model(intent, [plan]))))
    assert view.status == "done" and view.outcome == "refused", view
    assert "refused" in view.reply and needle in view.reply, view.reply
    assert git(repo, "rev-parse", "main") == main_before
    assert git(repo, "branch", "--list", "sorte/*") == branches_before


def test_auto_approve_policy_only_for_passing_parameter_changes_in_paper(settings: Settings) -> None:
    from guardian.verdict import GateResult, Verdict
    from sorte.agent.nodes.checking import auto_approvable
    from sorte.agent.state import AgentState
    from sorte.editing.plan import EditPlan

    def state(status: str) -> AgentState:
        return AgentState(run_id="r", request="r", verdict=Verdict(gates=[GateResult(gate="tests", status=status)]))

    auto = settings.model_copy(update={"agent": settings.agent.model_copy(update={"auto_approve": True})})
    passing = state("pass")
    params, code = EditPlan.model_validate(STOP_LOSS), EditPlan.model_validate(NO_REASONS)
    assert auto_approvable(auto, params, passing)
    assert not auto_approvable(settings, params, passing), "off by default"
    assert not auto_approvable(auto, code, passing), "code changes always ask"
    assert not auto_approvable(auto, params, state("inconclusive"))
    live = auto.model_copy(update={"runtime": auto.runtime.model_copy(update={"mode": "live", "live_trading": True})})
    assert not auto_approvable(live, params, passing), "real money always asks"


def test_unauthorised_sender_stops_at_receive(settings: Settings) -> None:
    view = run(runs.ask(settings, "raise the stop loss", sender="999", channel="telegram", llm=None))
    assert view.outcome == "unauthorised" and view.status == "done"
    nodes = [r["node"] for r in read_audit(settings.data_dir, view.run_id) if r["event"] == "leave"]
    assert nodes == ["receive", "report"]


def test_approval_by_message_decides_the_waiting_run(settings: Settings, repo: Path) -> None:
    main_before = git(repo, "rev-parse", "main")
    change = Model({"kind": "change", "strategy": "momentum", "language": "pt", "summary": "stop"}, [STOP_LOSS])
    waiting = run(runs.ask(settings, "aumenta o stop loss do momentum para 3%", llm=llm_for(settings, change)))
    assert waiting.status == "awaiting_approval"

    nothing = Model({"kind": "reject", "strategy": None, "language": "pt", "summary": "no"}, [STOP_LOSS])
    other = settings.model_copy(update={"data_dir": settings.data_dir.parent / "other"})
    answer = run(runs.ask(other, "não, rejeita", llm=llm_for(other, nothing)))
    assert answer.reply == "Nenhuma mudança está aguardando aprovação."

    approve = Model({"kind": "approve", "strategy": None, "language": "pt", "summary": "yes"}, [STOP_LOSS])
    answer = run(runs.ask(settings, "sim, pode aprovar", llm=llm_for(settings, approve)))
    assert answer.outcome == "answered" and answer.reply.startswith("Feito"), answer
    assert runs.run(settings, waiting.run_id).outcome == "merged"
    assert git(repo, "rev-parse", "main") != main_before
    git(repo, "update-ref", "refs/heads/main", main_before)
    git(repo, "reset", "-q", "--hard", main_before)


def test_optimise_turns_the_best_search_candidate_into_a_validated_plan(settings: Settings, repo: Path) -> None:
    intent = {"kind": "optimise", "strategy": "momentum", "language": "en", "summary": "optimise momentum"}
    model = Model(intent, [STOP_LOSS])
    view = run(runs.ask(settings, "optimise momentum's parameters", llm=llm_for(settings, model)))
    assert not any("Sorte's coder" in p for p in model.prompts), "the search, not the model, made the plan"
    assert view.status == "awaiting_approval", view
    assert view.plan_summary.startswith("Optimise momentum:")
    assert {op["op"] for op in view.plan["ops"]} == {"set_param"} and view.verdict["gates"]
    nodes = [r["node"] for r in read_audit(settings.data_dir, view.run_id) if r["event"] == "leave"]
    assert nodes == ["receive", "interpret", "recall", "optimise", "edit", "validate"]
    run(runs.decide(settings, view.run_id, Decision(approve=False), llm=llm_for(settings, model)))
