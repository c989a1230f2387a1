"""What `sorte status` shows: the lease, the slots and the current and previous deployments."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from commander.alerts import read_alerts
from commander.deployment import Deployment
from commander.history import DeploymentHistory
from commander.inbox import commander_running
from commander.lease import SLOTS, Lease, LeaseState
from sorte import paths

HISTORY_FILE = "deployments.sqlite"


def commander_dir(data_dir: Path | str) -> Path:
    return paths.commander_dir(data_dir)


class StatusReport(BaseModel):
    running: bool = Field(description="A commander holds this data directory's lock")
    lease: LeaseState
    slots: dict[str, Deployment | None] = Field(description="The newest deployment in each slot")
    active: Deployment | None
    previous: Deployment | None
    recent: list[Deployment]
    alerts: list[dict] = Field(default_factory=list, description="The newest alerts, oldest first")


def status(data_dir: Path | str, recent: int = 10) -> StatusReport:
    """Read-only: opens the lease and the history where the commander keeps them."""
    folder = commander_dir(data_dir)
    with Lease(folder) as lease, DeploymentHistory(folder / HISTORY_FILE) as history:
        deployments = history.list(limit=max(recent, 50))
        slots = {slot: next((d for d in deployments if d.slot == slot), None) for slot in SLOTS}
        return StatusReport(
            running=commander_running(folder),
            lease=lease.current(),
            slots=slots,
            active=history.active(),
            previous=history.previous(),
            recent=deployments[:recent],
            alerts=read_alerts(folder, limit=5),
        )
