"""The Docker slot backend, run for real: a slot container talks to the commander's Unix socket.

Skipped when no engine answers, unless SORTE_REQUIRE_DOCKER=1 (CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commander.backends import SlotSpec
from commander.docker_slots import DockerBackend, DockerProcess, container_name
from tests.needs_docker import require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


@pytest.fixture()
def backend(tmp_path: Path) -> Iterator[DockerBackend]:
    require_docker()
    commander_dir = tmp_path / "commander"
    commander_dir.mkdir()
    backend = DockerBackend(commander_dir=commander_dir)
    yield backend
    backend.cleanup()
    backend.client.close()


@pytest.fixture()
def spec(tmp_path: Path, backend: DockerBackend) -> Iterator[SlotSpec]:
    sock_dir = Path(tempfile.mkdtemp(prefix="sorte-"))  # a Unix socket path is at most ~107 bytes
    yield SlotSpec(
        slot="blue",
        deployment_id=7,
        commit="HEAD",
        worktree=REPO,
        socket=sock_dir / "c.sock",
        commander_dir=tmp_path / "commander",
        token="tok-123",
        heartbeat_s=0.2,
        log_file=tmp_path / "logs" / "blue-7.log",
    )
    shutil.rmtree(sock_dir, ignore_errors=True)


class Commander:
    """The commander's end of the socket: the first connection's reader and writer."""

    def __init__(self) -> None:
        self.conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self.server: asyncio.AbstractServer | None = None

    async def listen(self, path: Path) -> None:
        self.conn = asyncio.get_running_loop().create_future()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not self.conn.done():
                self.conn.set_result((reader, writer))

        self.server = await asyncio.start_unix_server(accept, path=str(path))

    async def read(self) -> dict[str, Any]:
        assert self.conn is not None
        reader, _ = await asyncio.wait_for(self.conn, TIMEOUT)
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert line, "the slot closed the socket"
        return json.loads(line)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        _, writer = await self.conn
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()

    async def close(self) -> None:
        if self.conn is not None and self.conn.done():
            self.conn.result()[1].close()
        if self.server is not None:
            self.server.close()


async def start_and_greet(backend: DockerBackend, spec: SlotSpec, commander: Commander) -> DockerProcess:
    await commander.listen(spec.socket)
    proc = await backend.start(spec)
    assert proc.ident.startswith("container ")
    hello = await commander.read()
    assert hello["ev"] == "hello"
    assert (hello["token"], hello["slot"], hello["deployment"]) == (spec.token, spec.slot, spec.deployment_id)
    return proc


def gone(backend: DockerBackend, spec: SlotSpec) -> bool:
    import docker.errors

    try:
        backend.client.containers.get(container_name(spec))
    except docker.errors.NotFound:
        return True
    return False


def test_slot_container_hello_heartbeat_stop(backend: DockerBackend, spec: SlotSpec) -> None:
    async def scenario() -> int:
        commander = Commander()
        try:
            proc = await start_and_greet(backend, spec, commander)
            container = backend.client.containers.get(container_name(spec))
            assert container.labels["sorte.slot"] == "blue"
            assert container.labels["sorte.slot.deployment"] == "7"
            assert container.labels["sorte.slot.commander_dir"] == str(spec.commander_dir.resolve())
            assert (await commander.read())["ev"] == "hb"
            await commander.send({"op": "stop"})
            while (msg := await commander.read())["ev"] == "hb":
                pass
            assert msg["ev"] == "bye"
            return await asyncio.wait_for(proc.wait(), TIMEOUT)
        finally:
            await commander.close()

    assert asyncio.run(scenario()) == 0
    assert gone(backend, spec)
    assert spec.log_file.exists()


def test_kill_ends_the_container(backend: DockerBackend, spec: SlotSpec) -> None:
    async def scenario() -> int:
        commander = Commander()
        try:
            proc = await start_and_greet(backend, spec, commander)
            proc.kill()
            proc.kill()  # idempotent, also once it has ended
            status = await asyncio.wait_for(proc.wait(), TIMEOUT)
            proc.kill()
            return status
        finally:
            await commander.close()

    assert asyncio.run(scenario()) == 137
    assert gone(backend, spec)


def test_cleanup_removes_a_running_slot(backend: DockerBackend, spec: SlotSpec) -> None:
    async def scenario() -> None:
        commander = Commander()
        try:
            await start_and_greet(backend, spec, commander)
            assert not gone(backend, spec)
            assert len(backend.containers()) == 1
            await asyncio.to_thread(backend.cleanup)
            assert gone(backend, spec)
        finally:
            await commander.close()

    asyncio.run(scenario())


def test_secret_env_stays_out(backend: DockerBackend, spec: SlotSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORTE_GITHUB__TOKEN", "canary")
    monkeypatch.setenv("SORTE_BROKER__FEE_BPS", "5")

    async def scenario() -> list[str]:
        commander = Commander()
        try:
            proc = await start_and_greet(backend, spec, commander)
            env = backend.client.containers.get(container_name(spec)).attrs["Config"]["Env"]
            await commander.send({"op": "stop"})
            assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
            return env
        finally:
            await commander.close()

    env = asyncio.run(scenario())
    assert not any("canary" in e or e.startswith("SORTE_GITHUB__TOKEN=") for e in env)
    assert "SORTE_BROKER__FEE_BPS=5" in env
    assert f"PYTHONPATH={REPO}" in env


def test_a_failed_start_leaves_its_output_in_the_log(backend: DockerBackend, spec: SlotSpec) -> None:
    bad = spec.model_copy(update={"slot": "red"})  # commander.slot accepts only blue and green

    async def scenario() -> int:
        proc = await backend.start(bad)
        return await asyncio.wait_for(proc.wait(), TIMEOUT)

    assert asyncio.run(scenario()) == 2
    assert gone(backend, bad)
    assert "invalid choice: 'red'" in bad.log_file.read_text()


def test_the_slot_strategy_worker_is_a_container_of_its_own(
    backend: DockerBackend, spec: SlotSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the slot's strategy code can reach: no variable, not the ledger or lease in the commander
    directory, not the commander's socket; the container has no network and no capability."""
    from sorte.runtime.strategy_host import StrategyHost
    from sorte.runtime.values import Ohlcv

    monkeypatch.setenv("SORTE_EXCHANGE__API_SECRET", "canary-in-the-commander")
    worktree = tmp_path / "worktree"
    (worktree / "strategies").mkdir(parents=True)
    probe = "\n".join(
        [
            '"""probe"""',
            "import numpy as np",
            "import os",
            'PARAMS = {"x": {"type": "int", "default": 1, "min": 0, "max": 2, "doc": "unused"}}',
            "def lookback(p):",
            "    return 1",
            "def features(bars, p):",
            '    return {"n": len(bars.close)}',
            "def _seen():",
            "    out = [repr(sorted(os.environ))]",
            f"    for path in ({str(spec.commander_dir)!r}, {str(spec.socket)!r}, {str(spec.socket.parent)!r}):",
            "        out.append(str(os.path.exists(path)))",
            "    return ' '.join(out)",
            "def decide(f, p):",
            '    n = f["n"]',
            "    return np.zeros(n), np.zeros(n, dtype=np.int8), np.array([_seen()] * n, dtype=object)",
            "",
        ]
    )
    (worktree / "strategies" / "probe.py").write_text(probe)
    (Path(spec.commander_dir) / "ledger.db").write_text("the book")
    backend._ensure_image()
    probe_spec = spec.model_copy(update={"worktree": worktree})
    worker, socket = backend._start_worker(probe_spec, "sorte-test-worker", tmp_path)
    try:
        with StrategyHost(worktree / "strategies", connect=socket) as host:
            x = [1.0, 2.0, 3.0]
            seen = str(host.strategy("probe").signals(Ohlcv(*([x] * 6), interval_s=60.0))[2][-1])
        worker.reload()
        config, hostcfg = worker.attrs["Config"], worker.attrs["HostConfig"]
    finally:
        worker.remove(force=True)
    assert "canary" not in seen and "SORTE_" not in seen
    assert seen.endswith("False False True"), seen  # only its own folder of the socket directory
    assert config["User"] == "65534:65534"
    assert hostcfg["NetworkMode"] == "none" and hostcfg["ReadonlyRootfs"] and hostcfg["CapDrop"] == ["ALL"]
    assert not any(str(spec.commander_dir.resolve()) in b for b in hostcfg["Binds"])
