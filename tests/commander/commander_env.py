"""A throw-away project repository and settings for commander tests, and helpers to run one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from commander.deployment import FINAL_STATES
from commander.engine import Commander, CommanderReport
from commander.history import DeploymentHistory
from commander.requests import request_deployment
from commander.status import HISTORY_FILE, commander_dir
from sorte.config import Settings
from sorte.runtime.ledger import Ledger
from tests.project_repo import git


def commander_settings(repo: Path, data_dir: Path, **commander: Any) -> Settings:
    options = {"shadow_bars": 40, "watch_bars": 40, "warm_bars": 40, "batch_interval_s": 0.01}
    options.update(commander)
    options.setdefault("analysis", {"min_bars": 30})
    return Settings(
        data_dir=data_dir,
        strategies_dir=repo / "strategies",
        git={"repo_root": str(repo)},
        runtime={"demo_bars": 4000},
        commander=options,
    )


def history(settings: Settings) -> DeploymentHistory:
    return DeploymentHistory(commander_dir(settings.data_dir) / HISTORY_FILE)


def deployment_settled(settings: Settings, deployment_id: int) -> Callable[[Commander], bool]:
    def done(c: Commander) -> bool:
        d = c.history.get(deployment_id)
        if d.state in FINAL_STATES:
            return c.pending is None
        if d.state == "active":
            return c.watch is None and c.pending is None
        return d.state in ("warm", "retired")

    return done


def deploy(
    settings: Settings,
    commit: str,
    request: str,
    until: Callable[[Commander], bool] | None = None,
    max_ticks: int = 3000,
) -> tuple[int, CommanderReport]:
    """Request ``commit`` and run a commander until that deployment is settled."""
    d = request_deployment(settings.data_dir, commit, "test", request)
    settled = deployment_settled(settings, d.id)

    def stop(c: Commander) -> bool:
        return (until is not None and until(c)) or settled(c)

    report = asyncio.run(Commander(settings).run(max_ticks=max_ticks, until=stop))
    return d.id, report


def head(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref)


def ledger_orders(settings: Settings) -> list[dict[str, Any]]:
    ledger = Ledger(commander_dir(settings.data_dir) / "ledger.db", durable=False)
    try:
        return ledger.orders()
    finally:
        ledger.close()
