"""The agent's typed state through the checkpointer: every model comes back as itself, with no
warning, and a checkpoint from when the state held dicts still reads into the models."""

from __future__ import annotations

import logging

import pytest

from guardian.verdict import GateResult, Verdict
from sorte.agent.state import AgentState, checkpoint_serde
from sorte.agent.views import Decision, Intent
from sorte.editing.plan import EditPlan
from sorte.interpret.reading import Reading

PLAN = {
    "summary": "momentum.stop_loss: 0.02 → 0.03",
    "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
}


def test_every_model_of_the_state_comes_back_as_itself(caplog: pytest.LogCaptureFixture) -> None:
    serde = checkpoint_serde()
    values = [
        Intent(kind="change", strategy="momentum", language="pt"),
        Reading(intent="change", action="edit", language="pt", plan=EditPlan.model_validate(PLAN)),
        EditPlan.model_validate(PLAN),
        Verdict(gates=[GateResult(gate="tests", status="pass")]),
        Decision(approve=True, by="telegram:1"),
        AgentState(run_id="r", request="aumenta o stop"),
    ]
    with caplog.at_level(logging.WARNING):
        back = [serde.loads_typed(serde.dumps_typed(value)) for value in values]
    assert back == values and [type(b) for b in back] == [type(v) for v in values]
    assert not [r for r in caplog.records if "checkpoint" in r.getMessage()], caplog.text


def test_a_state_of_dicts_reads_into_the_models() -> None:
    verdict = {**Verdict(gates=[GateResult(gate="tests", status="fail")]).model_dump(mode="json")}
    state = AgentState.model_validate(
        {
            "run_id": "r",
            "request": "raise momentum's stop loss to 3%",
            "intent": {"kind": "change", "strategy": "momentum", "language": "en", "summary": ""},
            "plan": PLAN,
            "verdict": {**verdict, "overall": "fail", "text": "❌ Verdict: FAIL"},
            "decision": {"approve": False, "by": "cli:local", "comment": ""},
        }
    )
    assert state.strategy == "momentum" and state.need_plan().ops[0].op == "set_param"
    assert state.need_verdict().overall == "fail" and state.decision == Decision(approve=False)
