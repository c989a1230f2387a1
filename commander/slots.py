"""The commander's handle on a running slot: start it, talk to it, watch it, stop it.

A slot is alive while its process runs, its socket is open and its heartbeats arrive; the
first of those to fail marks it dead with the reason, and every pending or later request
raises ``SlotDied`` with that reason (the commander's critical checks read it)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import structlog

from commander.backends import SlotBackend, SlotProcess, SlotSpec
from commander.deployment import DeploymentError
from commander.protocol import (
    MAX_LINE,
    Heartbeat,
    Hello,
    Reply,
    RoleOp,
    StepOp,
    StopOp,
    encode,
    read_slot_message,
)

log = structlog.get_logger("sorte.commander")


class SlotDied(DeploymentError):
    """The slot's process ended, closed its socket or stopped sending heartbeats."""


class SlotClient:
    def __init__(
        self,
        spec: SlotSpec,
        process: SlotProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        heartbeat_timeout_s: float,
    ) -> None:
        self.spec, self.process = spec, process
        self.slot, self.deployment_id = spec.slot, spec.deployment_id
        self.reader, self.writer = reader, writer
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.last_seen = time.monotonic()
        self.dead = ""
        self.died_at = 0.0
        self.stopping = False  # the commander asked it to stop: its end is no fault
        self.died = asyncio.Event()
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._watch())]

    # -- liveness ------------------------------------------------------------------------
    def _die(self, reason: str) -> None:
        if not self.dead:
            self.dead, self.died_at = reason, time.monotonic()
            level = log.info if self.stopping else log.warning
            level("slot_ended", slot=self.slot, deployment=self.deployment_id, reason=reason)
            self.died.set()

    async def _read(self) -> None:
        try:
            while line := await self.reader.readline():
                msg = read_slot_message(line)
                self.last_seen = time.monotonic()
                if not isinstance(msg, Heartbeat):
                    self.replies.put_nowait(msg)
        except (ConnectionError, ValueError) as exc:  # garbage, or a message of no known kind
            self._die(f"connection lost: {exc}")
        self._die("its connection closed")

    async def _watch(self) -> None:
        code = await self.process.wait()
        self._die(f"its process exited with status {code}")

    def check_heartbeat(self) -> bool:
        """False (and dead) when no message came for longer than the heartbeat timeout."""
        silent = time.monotonic() - self.last_seen
        if not self.dead and silent > self.heartbeat_timeout_s:
            self._die(f"missed heartbeats: silent for {silent:.1f} s")
            self.process.kill()
        return not self.dead

    # -- requests ------------------------------------------------------------------------
    async def request(self, message: RoleOp | StepOp | StopOp, timeout_s: float) -> Reply:
        """Send one message and wait for its reply; raises SlotDied."""
        if self.dead:
            raise SlotDied(self.dead)
        try:
            self.writer.write(encode(message))
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._die(f"connection lost: {exc}")
            raise SlotDied(self.dead) from None
        getter = asyncio.ensure_future(self.replies.get())
        dying = asyncio.ensure_future(self.died.wait())
        deadline = time.monotonic() + timeout_s
        try:
            # Short waits: a slot whose heartbeats stop (a hung step) is dead long before the
            # step's own timeout.
            while (left := deadline - time.monotonic()) > 0 and self.check_heartbeat():
                poll = min(left, self.heartbeat_timeout_s / 4)
                done, _ = await asyncio.wait({getter, dying}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    return getter.result()
                if dying in done:
                    break
        finally:
            dying.cancel()
            if not getter.done():
                getter.cancel()
        if not self.dead:
            self._die(f"no answer to {message.op} within {timeout_s:.1f} s")
            self.process.kill()
        raise SlotDied(self.dead)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the slot to exit; kill it if it does not within ``timeout_s``."""
        self.stopping = True
        if not self.dead:
            with contextlib.suppress(SlotDied):
                await self.request(StopOp(), timeout_s)
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self.close()

    async def kill(self) -> None:
        self.stopping = True
        self.process.kill()
        await self.process.wait()
        self._die("killed by the commander")
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()


async def launch(
    backend: SlotBackend, spec: SlotSpec, start_timeout_s: float, heartbeat_timeout_s: float
) -> SlotClient:
    """Start the slot's process and wait for its hello on a fresh socket."""
    connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if connected.done():
            writer.close()
            return
        connected.set_result((reader, writer))

    with contextlib.suppress(FileNotFoundError):
        spec.socket.unlink()
    server = await asyncio.start_unix_server(on_connect, path=str(spec.socket), limit=MAX_LINE)
    spec.socket.chmod(0o600)
    process = await backend.start(spec)
    exited: asyncio.Future[int] = asyncio.ensure_future(process.wait())
    try:
        waiting: set[asyncio.Future[Any]] = {connected, exited}
        done, _ = await asyncio.wait(waiting, timeout=start_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if connected not in done:
            reason = f"exited with status {exited.result()}" if exited in done else "did not connect in time"
            process.kill()
            raise SlotDied(f"slot {spec.slot} for deployment {spec.deployment_id} {reason}; see {spec.log_file}")
        reader, writer = connected.result()
        line = await asyncio.wait_for(reader.readline(), start_timeout_s)
        try:
            hello = read_slot_message(line)
        except ValueError:
            hello = None
        if not isinstance(hello, Hello) or hello.token != spec.token:
            process.kill()
            raise SlotDied(f"slot {spec.slot} answered with {line[:200]!r} instead of its hello")
    finally:
        exited.cancel()
        server.close()
        with contextlib.suppress(FileNotFoundError):
            spec.socket.unlink()
    log.info("slot_started", slot=spec.slot, deployment=spec.deployment_id, process=process.ident)
    return SlotClient(spec, process, reader, writer, heartbeat_timeout_s)


def new_token() -> str:
    return secrets.token_hex(8)


def socket_path(socket_dir: Path, slot: str) -> Path:
    return socket_dir / f"{slot}.sock"
