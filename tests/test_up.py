"""`sorte up` for real: a subprocess with the commander's slot processes, the status page on a
free port, a real Ctrl-C, and a second `sorte up` that continues the same ledger."""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from commander.inbox import commander_running
from commander.status import commander_dir
from tests.project_repo import copy_project

pytestmark = pytest.mark.slow
URL = re.compile(r"status page: (http://127\.0\.0\.1:\d+)/")


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    repo = copy_project(tmp_path / "repo")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    return {
        **clean,
        "SORTE_DATA_DIR": str(tmp_path / "var"),
        "SORTE_STRATEGIES_DIR": str(repo / "strategies"),
        "SORTE_GIT__REPO_ROOT": str(repo),
        "SORTE_RUNTIME__DEMO_BARS": "3000",
        "SORTE_WEB__TOKEN": "t0ken-for-tests",
        "COLUMNS": "200",
    }


class Up:
    """A `sorte up` subprocess whose output lines are read as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sorte.cli.main", "up", "--port", "0", *args],
            env=env,
            cwd=env["SORTE_GIT__REPO_ROOT"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 120) -> re.Match[str]:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if m := rx.search(line):
                return m
        raise AssertionError(f"no line matching {rx.pattern!r}; output:\n" + "\n".join(self.seen))

    def finish(self, timeout: float = 60) -> str:
        """Wait for the exit; all of the output."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)  # the pipe closes with the process
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "\n".join(self.seen)


def up_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `sorte up` expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "sorte.cli.main", "up", "--port", "0"],
        env=env,
        cwd=env["SORTE_GIT__REPO_ROOT"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def steps(data_dir: Path) -> list[int]:
    path = commander_dir(data_dir) / "ledger.db"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            return [r[0] for r in db.execute("SELECT step FROM equity ORDER BY step")]
    except sqlite3.OperationalError:
        return []


def test_up_serves_trades_stops_on_ctrl_c_and_resumes(env: dict[str, str], tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = Up(env, "--interval", "0.05")
    first.wait_for("Telegram: off. .*SORTE_TELEGRAM__TOKEN")
    url = first.wait_for(URL).group(1)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(steps(data_dir)) < 20:
        time.sleep(0.2)
    assert len(steps(data_dir)) >= 20, "\n".join(first.seen)

    overview = httpx.get(f"{url}/api/v1/overview", timeout=10).json()
    assert overview["commander_running"] and overview["health"] == "trading", overview
    assert overview["active"]["state"] == "active" and overview["lease"]["holder"] == overview["active_slot"]
    feed = overview["feed"]  # the replay's health, as the commander wrote it
    assert feed["source"] == "replay" and feed["mode"] == "replay" and len(feed["symbols"]) == 4, feed
    assert all(s["last_seq"] is not None for s in feed["symbols"]) and feed["current"], feed
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    assert "sorte_stage" in httpx.get(f"{url}/metrics", timeout=10).text  # the active slot's own metrics

    again = up_once(env)
    assert again.returncode == 2 and "already runs on" in again.stderr + again.stdout

    first.proc.send_signal(signal.SIGINT)
    out = first.finish()
    assert first.proc.returncode == 0, out
    assert "stopped cleanly" in out
    assert not commander_running(commander_dir(data_dir))
    slots = subprocess.run(["pgrep", "-f", f"commander.slot.*{tmp_path}"], capture_output=True, text=True)
    assert slots.stdout.strip() == "", "slot processes left behind"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=2)

    done = steps(data_dir)
    assert done == list(range(len(done)))
    second = Up(env, "--interval", "0", "--max-ticks", "15")
    out = second.finish(timeout=120)
    assert second.proc.returncode == 0, out
    assert "first deployment" not in out, "the past deployment events are not reported again"
    after = steps(data_dir)
    assert after[: len(done)] == done and len(after) == len(done) + 15, "the second run continues the same ledger"
    assert "stopped cleanly after" in out


def test_up_refuses_a_bad_configuration_and_starts_nothing(env: dict[str, str], tmp_path: Path) -> None:
    bad = {**env, "SORTE_RUNTIME__FEED": "ccxt"}
    proc = up_once(bad)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the ccxt feed needs symbols: pass --symbols" in proc.stderr
    assert not (commander_dir(tmp_path / "var") / "ledger.db").exists()


def test_up_runs_the_telegram_bot_when_a_token_is_set_and_stops_on_sigterm(env: dict[str, str]) -> None:
    from tests.fake_telegram_api import FakeTelegram

    fake = FakeTelegram().start()
    try:
        operator = 1001
        with_bot = {
            **env,
            "SORTE_TELEGRAM__TOKEN": fake.token,
            "SORTE_TELEGRAM__BASE_URL": fake.base_url,
            "SORTE_TELEGRAM__USERS": f'{{"{operator}": "operator"}}',
            "SORTE_TELEGRAM__POLL_TIMEOUT_S": "1",
        }
        up = Up(with_bot, "--interval", "0.05")
        up.wait_for("Telegram: the bot is polling")
        up.wait_for(r"deployment 1: promoting -> active")
        fake.text(operator, "/status")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not fake.sent_to(operator):
            time.sleep(0.2)
        replies = fake.sent_to(operator)
        assert replies and "#1" in replies[0], replies  # the active deployment, read through the service layer
        assert fake.commands, "the command menu was registered"
        assert token_free(up, fake.token)
        up.proc.send_signal(signal.SIGTERM)
        out = up.finish()
        assert up.proc.returncode == 0 and "stopped cleanly" in out, out
        assert fake.token not in out
        log = Path(env["SORTE_DATA_DIR"]) / "logs" / "sorte.jsonl"
        assert log.exists() and fake.token not in log.read_text()
    finally:
        fake.stop()


def token_free(up: Up, token: str) -> bool:
    """The bot's token appears in no output line (it is part of every Bot API URL)."""
    return all(token not in line for line in up.seen)


def test_a_taken_port_stops_everything_with_an_error(env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = Up(env, "--port", str(port))
        out = up.finish(timeout=120)
    assert up.proc.returncode == 1, out
    assert f"could not listen on 127.0.0.1:{port}" in out and "everything was stopped" in out
    assert not commander_running(commander_dir(tmp_path / "var"))
    slots = subprocess.run(["pgrep", "-f", f"commander.slot.*{tmp_path}"], capture_output=True, text=True)
    assert slots.stdout.strip() == "", "slot processes left behind"


def test_up_trades_a_live_market_through_the_commander(env: dict[str, str], tmp_path: Path) -> None:
    """`sorte up --feed ccxt --symbols ...` on the local fake Binance (REST and WebSocket), whose
    clock runs ten candles a second: the only settings given are where the exchange is."""
    from sorte import paths
    from sorte.market import read_health
    from tests.fake_exchange import FakeBinance

    fake = FakeBinance(("BTC/USDT", "ETH/USDT"), bars=400, future=4000).start().start_stream()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.1):
            fake.advance(1)

    live = {**env, "SORTE_EXCHANGE__BASE_URL": fake.url, "SORTE_EXCHANGE__WS_URL": fake.ws_url}
    try:
        up = Up(live, "--feed", "ccxt", "--symbols", "BTC/USDT,ETH/USDT", "--max-ticks", "15")
        up.wait_for("paper trading on binance 1m candles of BTC/USDT, ETH/USDT", timeout=60)
        threading.Thread(target=tick, daemon=True).start()
        out = up.finish(timeout=120)
    finally:
        stop.set()
        fake.stop()
    assert up.proc.returncode == 0, out
    assert "stopped cleanly after 15 steps" in out
    assert len(steps(tmp_path / "var")) >= 15
    health = read_health(paths.feed_health(commander_dir(tmp_path / "var")))
    assert health is not None and health.source == "binance" and health.streamed_candles >= 15
    assert "/api/v3/klines" in {path for _, path, _ in fake.requests}  # the lookback was prefetched over REST
    assert not fake.posted_orders()  # paper trading: nothing reached the exchange
