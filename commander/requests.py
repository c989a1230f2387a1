"""The commander's intake: a merged commit handed over by the agent becomes a requested deployment."""

from __future__ import annotations

from pathlib import Path

from commander.deployment import Deployment
from commander.history import DeploymentHistory
from commander.status import HISTORY_FILE, commander_dir


def request_deployment(data_dir: Path | str, commit: str, requested_by: str, request_id: str) -> Deployment:
    """Record ``commit`` as requested in the idle slot (blue when nothing is active).

    Idempotent per ``request_id``: a resumed agent run gets the deployment it recorded before."""
    with DeploymentHistory(commander_dir(data_dir) / HISTORY_FILE) as history:
        active = history.active()
        slot = "green" if active is not None and active.slot == "blue" else "blue"
        return history.create(commit, slot, requested_by, request_id=request_id)
