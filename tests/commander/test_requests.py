"""The agent's hand-over: a merged commit becomes one requested deployment in the idle slot."""

from __future__ import annotations

from pathlib import Path

from commander import DeploymentHistory
from commander.requests import request_deployment
from commander.status import HISTORY_FILE, commander_dir


def test_requested_in_the_idle_slot_once_per_request(tmp_path: Path) -> None:
    first = request_deployment(tmp_path, "a" * 40, "run-1", "deploy-run-1")
    assert (first.slot, first.state, first.requested_by) == ("blue", "requested", "run-1")
    assert request_deployment(tmp_path, "a" * 40, "run-1", "deploy-run-1").id == first.id  # a resumed run
    with DeploymentHistory(commander_dir(tmp_path) / HISTORY_FILE) as history:
        for state in ("starting", "shadow", "analysing", "promoting", "active"):
            history.transition(first.id, state)
    second = request_deployment(tmp_path, "b" * 40, "run-2", "deploy-run-2")
    assert second.slot == "green" and second.id != first.id
