"""Hooks into a running commander, for what watches or tests it from the outside (the
benchmark's clocks, the chaos runner's fault injection) without reaching into its parts.

``CommanderObserver`` does nothing; a subclass overrides the hooks it needs and is given to
``Commander(settings, observer=...)`` (or set as ``commander.observer`` before ``run``). The
commander calls the hooks inline: a hook that is slow makes the commander slow.
"""

from __future__ import annotations

from commander.deployment import Deployment
from commander.protocol import Done, Fault, Ready
from commander.runs import SlotRun
from sorte.runtime.values import Bar


class CommanderObserver:
    async def before_between_steps(self) -> None:
        """Called before the commander checks its slots and carries requests and deployments
        on; the commander's state may be read and, for a test, changed."""

    async def after_between_steps(self) -> None:
        """Called when that is done, before the next batch of bars is read."""

    def on_slot_launched(self, deployment: Deployment, seconds: float) -> None:
        """A slot process is up and said hello (``seconds``: worktree, process start and hello)."""

    def on_step(self, tick: int, seconds: float) -> None:
        """The commander's step ``tick`` is over: every slot answered (or failed) and what it
        decided (a hand-over, a fault's handling) is done."""

    def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
        """One slot's answer to a step (``entries``: whether new entries were allowed in it)."""

    def on_rollback_decided(self, to: int | None, reason: str, automatic: bool) -> None:
        """A rollback starts: asked for through the inbox, or decided by the commander."""

    def on_activated(self, run: SlotRun, ready: Ready) -> None:
        """A slot took the active role: it holds the lease and loaded the book (``ready.t``)."""
