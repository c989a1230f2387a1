"""The commander's service layer: deploy a commit, roll back, run the commander in the
foreground. The CLI calls it (and later Telegram and the status page); it prints nothing,
step messages go to an optional ``progress`` callback.

``deploy`` and ``rollback`` talk to a running commander through its files (the deployment
history and the inbox) and wait for it; when none runs they run one in this process until
the request is settled, then stop it (the slots stop with it; the history keeps the states).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from commander.deployment import FINAL_STATES, CommitRejected, Deployment, DeploymentError, DeploymentEvent
from commander.engine import Commander
from commander.handover import nothing_to_roll_back
from commander.history import DeploymentHistory
from commander.inbox import Inbox, commander_running
from commander.requests import request_deployment
from commander.runs import CommanderReport
from commander.status import HISTORY_FILE, commander_dir
from commander.worktree import resolve_commit
from sorte.config import Settings

Progress = Callable[[str], None]
POLL_S = 0.2  # how often a waiting caller reads the files of a running commander
REPORT_EVERY_S = 0.2  # how often an in-process commander's new events are reported


class RequestFailed(DeploymentError):
    """The request was recorded or taken, but did not succeed (a failed rollback, a commander
    that could not run). Input errors raise other DeploymentErrors, before anything is written."""


# -- reading the history ------------------------------------------------------------------
def settled(history: DeploymentHistory, deployment_id: int) -> bool:
    """True when nothing more is to wait for: a final state, active with the post-promotion
    watch passed since its latest activation, or demoted (warm, retired) after being active."""
    d = history.get(deployment_id)
    if d.state in FINAL_STATES:
        return True
    events = history.events(deployment_id)
    if d.state == "active":
        activations = [i for i, e in enumerate(events) if e.to_state == "active" and e.from_state != "active"]
        start = activations[-1] if activations else 0
        return any(e.outcome in ("watch_passed", "watch_ended") for e in events[start + 1 :])
    if d.state in ("warm", "retired"):
        return any(e.to_state == "active" for e in events)
    return False


def describe_event(e: DeploymentEvent) -> str:
    if e.from_state == e.to_state:
        return f"deployment {e.deployment_id}: {e.reason}"
    change = f"{e.from_state} -> {e.to_state}" if e.from_state else e.to_state
    return f"deployment {e.deployment_id}: {change}" + (f" ({e.reason})" if e.reason else "")


class EventReporter:
    """Reports the history events that appear after it was made (of recent deployments)."""

    def __init__(self, progress: Progress | None, history: DeploymentHistory | None = None) -> None:
        self.progress = progress
        self.last_seq = 0
        self.next_at = 0.0
        if history is not None:
            self.last_seq = max((e.seq for e in self._events(history)), default=0)

    @staticmethod
    def _events(history: DeploymentHistory) -> list[DeploymentEvent]:
        return sorted((e for d in history.list(limit=10) for e in history.events(d.id)), key=lambda e: e.seq)

    def poll(self, history: DeploymentHistory, throttle: bool = False) -> None:
        if self.progress is None or (throttle and time.monotonic() < self.next_at):
            return
        self.next_at = time.monotonic() + REPORT_EVERY_S
        for e in self._events(history):
            if e.seq > self.last_seq:
                self.last_seq = e.seq
                self.progress(describe_event(e))


def _history_path(settings: Settings) -> Path:
    return commander_dir(settings.data_dir) / HISTORY_FILE


def existing_history(settings: Settings) -> DeploymentHistory | None:
    """The history when there is one; None (and nothing created) otherwise."""
    path = _history_path(settings)
    return DeploymentHistory(path) if path.exists() else None


def _repo_root(settings: Settings) -> Path:
    from sorte import paths

    return paths.repo_root(settings)


# -- running a commander ------------------------------------------------------------------
def _run(commander: Commander, max_ticks: int | None, until: Callable[[Commander], bool]) -> CommanderReport:
    """Run ``commander`` to its end; SIGINT/SIGTERM (and Ctrl-C) stop it cleanly, slots included."""

    async def main() -> CommanderReport:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, commander.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        try:
            return await commander.run(max_ticks, until)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        commander.stop()  # run's own clean-up has stopped the slots by now
        return commander.report()  # it kept what it knew when its stores closed


def serve(
    settings: Settings,
    progress: Progress | None = None,
    max_ticks: int | None = None,
    observe: Callable[[Commander], None] | None = None,
) -> CommanderReport:
    """Run the commander in the foreground until the feed ends, ``max_ticks`` steps or Ctrl-C.

    ``progress`` gets the deployment history's events as they happen; ``observe`` is called
    with the commander between steps (for a status line)."""
    commander = Commander(settings)
    history = existing_history(settings)
    with contextlib.nullcontext() if history is None else history:
        reporter = EventReporter(progress, history)  # what happens from now on, recovery included

    def until(c: Commander) -> bool:
        reporter.poll(c.history, throttle=True)
        if observe is not None:
            observe(c)
        return False

    report = _run(commander, max_ticks, until)
    if progress is not None:
        with contextlib.suppress(DeploymentError), DeploymentHistory(_history_path(settings)) as history:
            reporter.poll(history)
    return report


# -- deploy -------------------------------------------------------------------------------
def deploy(
    settings: Settings,
    ref: str,
    requested_by: str = "cli",
    progress: Progress | None = None,
    wait: bool = True,
) -> Deployment:
    """Request the deployment of ``ref`` (a sha, branch or tag) and, with ``wait``, carry it
    until it is settled (see ``settled``); returns the deployment as it then is.

    Raises DeploymentError (nothing written) when ``ref`` is not a commit, CommitRejected
    when the commit was rejected or rolled back before, RequestFailed when the commander
    could not run."""
    say = progress or (lambda _msg: None)
    commit = resolve_commit(_repo_root(settings), ref)
    history = existing_history(settings)
    if history is not None:
        with history:
            if history.is_rejected(commit):
                raise CommitRejected(
                    f"commit {commit[:12]} was rejected or rolled back before; deploy a new change instead"
                )
            active = history.active()
            if active is not None and active.commit == commit:
                raise DeploymentError(f"commit {commit[:12]} is already active (deployment {active.id})")
    folder = commander_dir(settings.data_dir)
    running = commander_running(folder)
    commander = None if running or not wait else Commander(settings)  # a bad configuration fails here
    d = request_deployment(settings.data_dir, commit, requested_by, f"cli-{uuid.uuid4().hex}")
    say(f"deployment {d.id} requested: commit {commit[:12]} ({ref}) in the {d.slot} slot")
    if not wait:
        return d
    if running:
        say("a commander is running: following the deployment")
        followed = _follow(settings, d.id, say)
        if followed is not None:
            return followed
        say("the commander stopped before the deployment settled: carrying it on here")
        commander = Commander(settings)
    else:
        say("no commander is running: starting one in this process")
    assert commander is not None
    return _carry(settings, commander, d.id, say)


def _follow(settings: Settings, deployment_id: int, say: Progress) -> Deployment | None:
    """Poll a running commander's history until the deployment is settled; None when the
    commander stops first."""
    with DeploymentHistory(_history_path(settings)) as history:
        reporter = EventReporter(say)
        reporter.last_seq = max((e.seq for e in history.events(deployment_id)), default=0)
        folder = commander_dir(settings.data_dir)
        while True:
            reporter.poll(history)
            if settled(history, deployment_id):
                return history.get(deployment_id)
            if not commander_running(folder):
                reporter.poll(history)
                return history.get(deployment_id) if settled(history, deployment_id) else None
            time.sleep(POLL_S)


def _carry(settings: Settings, commander: Commander, deployment_id: int, say: Progress) -> Deployment:
    """Run ``commander`` in this process until the deployment is settled."""
    reporter = EventReporter(say)
    first = True

    def until(c: Commander) -> bool:
        nonlocal first
        if first:
            reporter.last_seq = max((e.seq for e in c.history.events(deployment_id)), default=0)
            first = False
        reporter.poll(c.history, throttle=True)
        if settled(c.history, deployment_id):
            return True
        # The watch also ends without an event when the warm slot is gone: nothing to wait for.
        d = c.history.get(deployment_id)
        return d.state == "active" and c.pending is None and (c.watch is None or c.watch[0] != deployment_id)

    try:
        _run(commander, None, until)
    except DeploymentError as exc:
        if commander_running(commander.dir):  # another commander started meanwhile: follow it
            followed = _follow(settings, deployment_id, say)
            if followed is not None:
                return followed
        raise RequestFailed(f"the commander stopped: {exc}") from exc
    with DeploymentHistory(_history_path(settings)) as history:
        reporter.poll(history)
        return history.get(deployment_id)


# -- rollback -----------------------------------------------------------------------------
def rollback(
    settings: Settings,
    to: int | None = None,
    reason: str = "manual rollback",
    progress: Progress | None = None,
) -> str:
    """Give the lease back to the previous deployment (or deployment ``to``) and return the
    commander's answer ("nothing to do: ..." when the active one is already a rollback's).

    Raises DeploymentError (nothing written) for an unknown ``to`` or nothing active,
    RequestFailed when the commander refused or could not do it."""
    say = progress or (lambda _msg: None)
    history = existing_history(settings)
    if history is None:
        raise DeploymentError("nothing is active: nothing to roll back")
    with history:
        if history.active() is None:
            raise DeploymentError("nothing is active: nothing to roll back")
        if to is not None:
            target = history.get(to)  # UnknownDeployment: "no deployment N"
            if target.state not in ("warm", "retired", "active"):
                raise DeploymentError(f"deployment {to} is {target.state}; only a warm or retired one can come back")
            if target.state != "active" and history.is_rejected(target.commit):
                raise CommitRejected(f"deployment {to} runs commit {target.commit[:12]}, which cannot come back")
        if done := nothing_to_roll_back(history, to):  # no commander needed to say so
            return done
        reporter = EventReporter(say, history)
    folder = commander_dir(settings.data_dir)
    running = commander_running(folder)
    commander = None if running else Commander(settings)
    with contextlib.closing(Inbox(folder)) as inbox:
        request_id = inbox.submit("rollback", to=to, reason=reason)
        whom = f"deployment {to}" if to is not None else "the previous deployment"
        say(f"rollback to {whom} requested (request {request_id})")
        if running:
            say("a commander is running: waiting for it")
            while inbox.get(request_id).status == "pending" and commander_running(folder):
                _report(reporter, settings)
                time.sleep(POLL_S)
            if inbox.get(request_id).status == "pending":
                say("the commander stopped before taking the request: handling it here")
                commander = Commander(settings)
        if commander is not None:
            say("no commander is running: starting one in this process")

            def until(c: Commander) -> bool:
                reporter.poll(c.history, throttle=True)
                return c.inbox.get(request_id).status != "pending"

            try:
                _run(commander, None, until)
            except DeploymentError as exc:
                raise RequestFailed(f"the commander stopped: {exc}") from exc
        _report(reporter, settings)
        request = inbox.get(request_id)
    if request.status == "failed":
        raise RequestFailed(request.result)
    if request.status == "pending":
        raise RequestFailed(f"the commander stopped before handling rollback request {request_id}")
    return request.result


def _report(reporter: EventReporter, settings: Settings) -> None:
    if reporter.progress is not None:
        with DeploymentHistory(_history_path(settings)) as history:
            reporter.poll(history)
