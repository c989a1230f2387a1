"""What the commander holds between steps: its settings and stores, the slots that run, the
step it is at, the hand-over and post-promotion watch in flight. The parts that drive it
(``step_loop``, ``pipeline``, ``handover``, ``slot_runs``) share one ``CommanderState``;
``commander.engine.Commander`` is one, with those parts composed."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

from commander.alerts import Alerts
from commander.backend_choice import make_backend
from commander.backends import SlotBackend
from commander.gateway import OrderGateway
from commander.history import DeploymentHistory
from commander.inbox import CommanderLock, Inbox
from commander.lease import Lease
from commander.observer import CommanderObserver
from commander.runs import SAMPLES_KEPT, Handoff, HandoffRecord, RollbackRecord, SlotRun
from commander.slots import SlotClient
from commander.source import Source, open_source
from commander.status import commander_dir
from sorte import paths
from sorte.config import Settings
from sorte.runtime.assembly import check_live_credentials
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import Bar


class CommanderState:
    # The stores, opened when the commander runs (and closed when it stops).
    history: DeploymentHistory
    lease: Lease
    inbox: Inbox
    alerts: Alerts
    ledger: Ledger
    gateway: OrderGateway | None = None  # a live account's orders (runtime.mode=live)

    def __init__(
        self,
        settings: Settings,
        repo_root: Path | None = None,
        backend: SlotBackend | None = None,
        observer: CommanderObserver | None = None,
        source: Source | None = None,
    ) -> None:
        self.settings = settings
        self.cs = settings.commander
        self.dir = commander_dir(settings.data_dir).resolve()
        self.repo_root = Path(repo_root).resolve() if repo_root else paths.repo_root(settings)
        self.backend = backend or make_backend(self.cs.backend, self.dir, _slot_mounts(settings))
        self.observer = observer or CommanderObserver()
        self.lock = CommanderLock(self.dir)
        self.feed = source or open_source(settings)
        if settings.runtime.mode == "live":  # no flag or no keys: refused before anything is written
            check_live_credentials(settings)
        self.fingerprint = self.feed.fingerprint
        self.slots: dict[str, SlotRun] = {}
        self.tick = 0
        self.recent: deque[tuple[int, list[Bar]]] = deque(maxlen=SAMPLES_KEPT)
        self.feed_last: dict[str, int] = {}
        self.joining: set[str] = set()  # symbols added to the feed whose first bar is still to come
        self.handoffs: list[HandoffRecord] = []
        self.rollbacks: list[RollbackRecord] = []
        self.restarts = 0
        self.feed_gaps = 0
        self.pending: Handoff | None = None
        self.watch: tuple[int, int, int] | None = None  # (deployment id, from tick, until tick)
        self.warm_until: dict[str, int] = {}
        self.starting: asyncio.Task[SlotClient] | None = None  # a candidate's slot process on its way up
        self.starting_id: int | None = None
        self.backoff = self.cs.restart_backoff_s
        self.healthy_ticks = 0
        self.stopping = asyncio.Event()
        self.socket_dir: Path | None = None
        self.handling: set[int] = set()  # inbox requests whose hand-over is pending

    # -- lookups ---------------------------------------------------------------------------
    def active_run(self) -> SlotRun | None:
        return next((r for r in self.slots.values() if r.role == "active"), None)

    def warm_run(self) -> SlotRun | None:
        for run in self.slots.values():
            if run.role == "shadow" and self.history.get(run.deployment.id).state == "warm":
                return run
        return None

    def entries_allowed(self) -> bool:
        """False while a live account is refused trading (a reconciliation found a difference):
        no slot takes new entries then, the active one or the shadows (like with like)."""
        return self.gateway is None or not self.gateway.halted

    def candidate(self) -> SlotRun | None:
        for run in self.slots.values():
            if run.role == "shadow" and self.history.get(run.deployment.id).state in ("shadow", "analysing"):
                return run
        return None


def _slot_mounts(settings: Settings) -> dict[str, str]:
    mounts = {str(Path(p).resolve().parent): "ro" for p in settings.runtime.data}
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    mounts[str(data_dir)] = "ro"  # control.json; the commander's own folder is mounted rw
    return mounts
