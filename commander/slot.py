"""A slot process: one deployment's trading runtime, driven bar by bar by the commander.

Run as ``python -m commander.slot`` from the deployment's own worktree (so the runtime and
the strategies are that commit's). In the ``active`` role the runtime trades on the book of
the account (the shared ledger), every order through a ``FencedBroker`` and every ledger
commit under the lease, at the epoch the commander handed over; in the ``shadow`` role it
starts from a copy of that book and trades a private paper book that nothing else sees.

A fault (an exception in the decision or order path, an order or commit with a stale epoch,
a gap in the bar sequence) is reported to the commander, and the slot takes no further step:
its state after a half-done step cannot be trusted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from commander.fencing import FencedBroker, StaleEpoch
from commander.lease import Lease, LeaseConflict
from commander.protocol import (
    MAX_LINE,
    Bye,
    Done,
    Fault,
    Heartbeat,
    Hello,
    Message,
    OrderIntent,
    Ready,
    Role,
    RoleOp,
    StepOp,
    StopOp,
    encode,
    read_op,
    row_bar,
)
from commander.routed_broker import RoutedBroker
from commander.slot_report import SlotReporter
from commander.source import PushedFeed, WarmupHistory, ledger_path, replay_source
from sorte import paths
from sorte.config import Settings
from sorte.runtime.assembly import configured_cascade, strategy_host
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import Cascade, LLMStage
from sorte.runtime.clock import SimClock
from sorte.runtime.control import RuntimeControl
from sorte.runtime.engine import Runtime
from sorte.runtime.executor import Executor
from sorte.runtime.feed import ReplayFeed
from sorte.runtime.ledger import Ledger
from sorte.runtime.metrics import RuntimeMetrics
from sorte.runtime.strategy_host import StrategyHost
from sorte.runtime.values import Order

_EPOCH = re.compile(r"^e\d+:")
ORDER_PATH_FILES = ("executor.py", "broker.py", "live_broker.py", "routed_broker.py", "fencing.py", "ledger.py")


class FencedLedger:
    """The shared ledger, committed only while the slot holds the lease at its epoch."""

    def __init__(self, ledger: Ledger, lease: Lease, slot: str, epoch: int) -> None:
        self.ledger, self.lease, self.slot, self.epoch = ledger, lease, slot, epoch

    def commit_step(self, *args: Any) -> None:
        try:
            with self.lease.guard(self.slot, self.epoch):
                self.ledger.commit_step(*args)
        except LeaseConflict as exc:
            raise StaleEpoch(f"ledger commit refused: {exc}") from None

    def replace_orders(self, replaced: list[tuple[Order, Order]]) -> None:
        try:
            with self.lease.guard(self.slot, self.epoch):
                self.ledger.replace_orders(replaced)
        except LeaseConflict as exc:
            raise StaleEpoch(f"ledger commit refused: {exc}") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


class ShadowLedger:
    """Reads the account's book to start from it; commits nothing (the shadow book is private)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def commit_step(self, *args: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def book(broker: PaperBroker) -> dict[str, Any]:
    """What must be identical on both sides of a hand-over."""
    orders = broker.open_orders()
    return {
        "cash": broker.cash,
        "realized_pnl": broker.realized_pnl,
        "fees": broker.fees_paid,
        "positions": {s: asdict(p) for s, p in sorted(broker.positions.items())},
        # By decision: an order placed again under the new epoch is the same order of the book.
        "open_orders": sorted(_EPOCH.sub("", o.client_order_id, count=1) for o in orders),
        # The pair rotation keeps these symbols: an order resting at the exchange can still fill.
        "order_symbols": sorted({o.symbol for o in orders}),
    }


def fault_kind(exc: BaseException) -> str:
    if isinstance(exc, StaleEpoch):
        return "stale_epoch"
    frames = [f.filename for f in traceback.extract_tb(exc.__traceback__)]
    return "order_path" if any(f.endswith(ORDER_PATH_FILES) for f in frames) else "decision_path"


class Slot:
    def __init__(
        self, name: str, commander_dir: Path, deployment: int = 0, strategy_socket: Path | None = None
    ) -> None:
        self.name = name
        self.strategy_socket = strategy_socket  # set when the commander confined the worker itself
        self.host: StrategyHost | None = None
        self.deployment = deployment
        self.reporter = SlotReporter(commander_dir, name)
        self.commander_dir = commander_dir
        self.settings: Settings | None = None
        self.source: ReplayFeed | WarmupHistory | None = None
        self.runtime: Runtime | None = None
        self.role: Role | None = None
        self.epoch = 0
        self.broken = ""  # why no further step is taken
        self.last_seq: dict[str, int] = {}
        self.equity = 0.0
        self.fallbacks = 0
        self._ledger: Ledger | None = None
        self._lease: Lease | None = None

    # -- roles -----------------------------------------------------------------------------
    async def set_role(self, msg: RoleOp) -> Ready:
        if self.settings is None:  # in a thread: the heartbeats keep going while data loads
            await asyncio.to_thread(self._configure, msg.settings)
        settings = self.settings
        assert settings is not None  # configured just above
        if msg.warmup is not None:  # a live feed: the history up to the last bar the commander sent
            self.source = WarmupHistory(msg.warmup)
        if self.source is None:
            raise ValueError(f"the {settings.runtime.feed} feed's history comes with the role, and none came")
        role, epoch = msg.role, msg.epoch
        self._close_runtime()
        metrics = RuntimeMetrics()
        if self.host is None:  # one worker for the slot's life: a role change keeps it (and its speed)
            self.host = await asyncio.to_thread(strategy_host, settings)
        cascade = await asyncio.to_thread(configured_cascade, settings, metrics.registry, self.host)
        self.runtime = self._build(role, epoch, cascade, metrics)
        await self.runtime.resume()
        self.role, self.epoch = role, epoch
        self.last_seq = dict(self.runtime.cursor)
        orders = self._place_missing(msg)
        if isinstance(self.source, WarmupHistory):  # a live feed: symbols not traded yet start warm too
            self._warm(self.source, [s for s in self.source.symbols if s not in self.runtime.cursor])
        self.equity = self.runtime.broker.equity()
        self.fallbacks = self._fallbacks()
        if role == "active":
            self.reporter.reset(self.runtime)
            self._report(lambda: self.reporter.write(self.runtime, 0, str(self.deployment)))
        return Ready(
            role=role,
            epoch=epoch,
            cursor=dict(self.last_seq),
            book=book(self.runtime.broker),
            t=time.monotonic(),
            orders=orders,
        )

    def _place_missing(self, msg: RoleOp) -> list[OrderIntent]:
        """A live account's new holder: the open orders the exchange never got are placed again
        under this epoch at once (stored first), for the commander to send before any step."""
        runtime = self.runtime
        assert runtime is not None
        routed = runtime.broker if isinstance(runtime.broker, RoutedBroker) else None
        if routed is None or not msg.orders:
            return []
        routed.deliver(msg.orders)
        replaced = routed.place_missing()
        if replaced:
            cast(FencedLedger, runtime.ledger).replace_orders(replaced)
            runtime.adopt([new for _, new in replaced])
        return routed.take_outbox()

    def _configure(self, payload: dict[str, Any]) -> None:
        worktree = Path.cwd()
        payload = {**payload, "strategies_dir": str(worktree / "strategies")}
        if self.strategy_socket is not None:
            payload["runtime"] = {**payload.get("runtime", {}), "strategy_worker_socket": str(self.strategy_socket)}
        self.settings = Settings.model_validate(payload)
        # A live feed's history comes from the commander: a slot never reaches the exchange.
        self.source = replay_source(self.settings) if self.settings.runtime.feed == "replay" else None

    def _build(self, role: str, epoch: int, cascade: Cascade, metrics: RuntimeMetrics) -> Runtime:
        settings, source = self.settings, self.source
        assert settings is not None and source is not None  # configured with the first role
        live = role == "active" and settings.runtime.mode == "live"
        # A live account's active book: orders through the commander's gateway; a shadow's is paper.
        paper = RoutedBroker(settings.broker, epoch) if live else PaperBroker(settings.broker)
        ledger = Ledger(ledger_path(self.commander_dir), durable=role == "active")
        self._ledger = ledger
        control = RuntimeControl(batch_interval_s=0.0)
        if role == "active":
            self._lease = Lease(self.commander_dir)
            control.file = paths.control_file(settings.data_dir)  # `sorte control pause` reaches the trader
            fenced = FencedBroker(paper, self._lease, self.name, epoch)
            # A proxy of the paper broker: every attribute but ``submit`` is the paper broker's.
            executor = Executor(cast(PaperBroker, fenced), settings.risk, settings.broker)
            journal_ledger: Any = FencedLedger(ledger, self._lease, self.name, epoch)
        elif role == "shadow":
            executor = Executor(paper, settings.risk, settings.broker)
            journal_ledger = ShadowLedger(ledger)
        else:
            raise ValueError(f"unknown role {role!r}")
        return Runtime(cascade, PushedFeed(source), paper, executor, SimClock(), control, journal_ledger, metrics)

    def _close_runtime(self) -> None:
        for closable in (self._ledger, self._lease, self.runtime.cascade if self.runtime else None):
            if closable is not None:
                closable.close()
        self._ledger = self._lease = None
        self.runtime = None

    def _fallbacks(self) -> int:
        stages = self.runtime.cascade.stages if self.runtime else []
        return sum(s.fallbacks for s in stages if isinstance(s, LLMStage) and s.judge is not None)

    # -- steps -----------------------------------------------------------------------------
    async def step(self, msg: StepOp) -> Done | Fault:
        tick, t_recv = msg.tick, time.monotonic()
        if self.broken:
            return Fault(tick=tick, kind="broken", detail=f"after an earlier fault: {self.broken}")
        if self.runtime is None or self.role is None:
            return Fault(tick=tick, kind="no_role", detail="a step arrived before a role")
        bars = [row_bar(r) for r in msg.bars]
        if msg.warmup is not None:  # symbols joining the feed (pair selection): warm, and a new sequence
            self._warm(WarmupHistory(msg.warmup), sorted(msg.warmup.bars))
        gap = "" if msg.feed_gap else self._gap(bars)  # a gap the commander saw in its feed
        if gap:
            self.broken = gap
            return Fault(tick=tick, kind="gap", detail=gap)
        runtime = self.runtime
        routed = runtime.broker if isinstance(runtime.broker, RoutedBroker) else None
        if routed is not None:
            routed.deliver(msg.orders or [])
        control, entries = runtime.control, msg.entries
        saved = (control.paused, control.file)
        if not entries:  # a hand-over's last step: no new entries, for this step only
            control.paused, control.file = True, None
        try:
            await runtime.process(bars)
        except Exception as exc:  # a fault of the deployment's code: reported, never hidden
            kind = fault_kind(exc)
            self.broken = f"{type(exc).__name__}: {exc}"
            tb = "".join(traceback.format_exception(exc, limit=-6))
            return Fault(tick=tick, kind=kind, detail=self.broken, traceback=tb)
        finally:
            if not entries:
                control.paused, control.file = saved
        for b in bars:
            self.last_seq[b.symbol] = b.seq
        equity = runtime.broker.equity()
        pnl, self.equity = equity - self.equity, equity
        fallbacks = self._fallbacks()
        errors, self.fallbacks = fallbacks - self.fallbacks, fallbacks
        if self.role == "active":
            self._report(lambda: self.reporter.after_step(runtime, bars, errors, tick, str(self.deployment)))
        return Done(
            tick=tick,
            role=self.role,
            latency_ms=runtime.last_decision_s * 1000,
            errors=errors,
            equity=equity,
            pnl=pnl,
            book=book(runtime.broker),
            cursor=dict(self.last_seq),
            t_recv=t_recv,
            t=time.monotonic(),
            orders=routed.take_outbox() if routed is not None else [],
        )

    def _warm(self, history: WarmupHistory, symbols: list[str]) -> None:
        assert self.runtime is not None
        for symbol in symbols:
            window = history.last(symbol, self.runtime.cascade.window)
            self.runtime.add_symbol(symbol, window)
            self.last_seq.pop(symbol, None)

    def _report(self, write: Any) -> None:
        """The front-ends' snapshot and alerts: a full disk there must not stop trading."""
        try:
            write()
        except OSError as exc:
            print(f"slot {self.name}: snapshot not written: {exc}", file=sys.stderr)

    def _gap(self, bars: list) -> str:
        for b in bars:
            last = self.last_seq.get(b.symbol)
            if last is not None and b.seq != last + 1:
                return f"bar sequence gap on {b.symbol}: got seq {b.seq} after {last}"
        return ""


async def serve(args: argparse.Namespace) -> int:
    reader, writer = await asyncio.open_unix_connection(args.socket, limit=MAX_LINE)
    slot = Slot(args.slot, Path(args.commander_dir), args.deployment, args.strategy_socket)

    def send(message: Message) -> None:
        writer.write(encode(message))

    send(Hello(slot=args.slot, deployment=args.deployment, token=args.token, pid=os.getpid()))

    async def heartbeat() -> None:
        while True:
            send(Heartbeat(t=time.monotonic()))
            await writer.drain()
            await asyncio.sleep(args.heartbeat)

    beats = asyncio.create_task(heartbeat())
    try:
        while line := await reader.readline():
            try:
                msg = read_op(line)
            except ValueError as exc:  # no message of the protocol: said back, like any fault
                send(Fault(kind="protocol", detail=f"unreadable message: {str(exc)[:500]}"))
                await writer.drain()
                continue
            if isinstance(msg, StopOp):
                send(Bye())
                await writer.drain()
                return 0
            reply: Message
            try:
                reply = await (slot.set_role(msg) if isinstance(msg, RoleOp) else slot.step(msg))
            except Exception as exc:  # the role could not be built (the commit does not start)
                tb = "".join(traceback.format_exception(exc, limit=-6))
                reply = Fault(kind="start", detail=f"{type(exc).__name__}: {exc}", traceback=tb)
            send(reply)
            await writer.drain()
        return 0  # the commander went away: a slot never trades on its own
    finally:
        beats.cancel()
        slot._close_runtime()
        if slot.host is not None:
            slot.host.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commander.slot")
    parser.add_argument("--slot", required=True, choices=["blue", "green"])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--commander-dir", required=True)
    parser.add_argument("--deployment", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--strategy-socket", type=Path, default=None, help="a worker the commander started")
    args = parser.parse_args(argv)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
