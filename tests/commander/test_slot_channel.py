"""The commander's end of a slot's channel: every message is read as one of the protocol's
models, and anything else (garbage, or JSON of no known shape) is the slot's fault."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commander.backends import SlotSpec
from commander.protocol import Done, Heartbeat, StepOp, encode
from commander.slots import SlotClient, SlotDied


class FakeProcess:
    ident = "fake"

    def __init__(self) -> None:
        self.ended = asyncio.Event()

    async def wait(self) -> int:
        await self.ended.wait()
        return -9

    def kill(self) -> None:
        self.ended.set()


async def talk(tmp_path: Path, lines: list[bytes]) -> tuple[SlotClient, object]:
    """A client on a socket whose other end answers the first request with ``lines``."""
    path = tmp_path / "s.sock"
    served: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Future()
    server = await asyncio.start_unix_server(lambda r, w: served.set_result((r, w)), path=str(path))
    reader, writer = await asyncio.open_unix_connection(str(path))
    slot_reader, slot_writer = await served
    spec = SlotSpec(
        slot="blue",
        deployment_id=1,
        commit="c",
        worktree=tmp_path,
        socket=path,
        commander_dir=tmp_path,
        token="t",
        log_file=tmp_path / "log",
    )
    client = SlotClient(spec, FakeProcess(), reader, writer, heartbeat_timeout_s=5.0)

    async def answer() -> None:
        await slot_reader.readline()
        for line in lines:
            slot_writer.write(line)
        await slot_writer.drain()

    answering = asyncio.create_task(answer())
    try:
        result: object = await client.request(StepOp(tick=1, bars=[]), 5.0)
    except SlotDied as exc:
        result = exc
    await answering
    await client.close()
    server.close()
    return client, result


DONE = Done(tick=1, role="active", latency_ms=1.0, errors=0, equity=1.0, pnl=0.0, book={}, cursor={}, t_recv=0.0, t=0.0)


def test_a_reply_is_read_as_its_model_and_heartbeats_are_not_replies(tmp_path: Path) -> None:
    client, reply = asyncio.run(talk(tmp_path, [encode(Heartbeat(t=0.0)), encode(DONE)]))
    assert reply == DONE and not client.dead


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1, 2]\n", b'{"ev": "done", "tick": 1}\n', b'{"ev": "surprise"}\n'],
    ids=["garbage", "not an object", "missing fields", "unknown kind"],
)
def test_a_malformed_message_is_the_slots_fault(tmp_path: Path, line: bytes) -> None:
    client, reply = asyncio.run(talk(tmp_path, [line]))
    assert isinstance(reply, SlotDied) and client.dead.startswith("connection lost")
