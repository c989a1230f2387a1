"""`sorte status` shows the market feed from the commander's health file: a summary line, the
figures and a per-symbol table (the stale symbol marked), ages grown since the snapshot; the
JSON report carries it as ``feed``; before there is a file it says so and does not fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sorte.cli import status as status_module
from sorte.cli.main import app
from sorte.config import Settings
from tests.feed_health import commander_lock, write_feed


@pytest.fixture()
def data_dir(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(status_module.console, "width", 250)  # one summary line, unwrapped
    return tmp_path / "var"


def test_no_feed_file(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "feed: none yet" in result.stdout
    as_json = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert as_json["feed"] is None and as_json["lease"]["epoch"] == 0


def test_the_feed_its_figures_and_a_stale_symbol(data_dir: Path) -> None:
    write_feed(data_dir, ago_s=7200)
    with commander_lock(data_dir):
        result = CliRunner().invoke(app, ["status"])
        as_json = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert (
        ", not updated for 2.0 h: binance 1m websocket, 2 symbols, last bar 2.2 h ago, lag 1.5 s, 2 reconnects, " in out
    )
    assert "17 backfilled, 240 streamed candles, stale: ETH/USDT, new entries blocked" in out
    assert "clock offset -0.250 s, 1 failed polls, 0 gaps, new entries blocked" in out
    rows = {line.split()[1]: line for line in out.splitlines() if "/USDT" in line and "│" in line}
    assert set(rows) == {"BTC/USDT", "ETH/USDT"}
    assert "stale" in rows["ETH/USDT"] and "stale" not in rows["BTC/USDT"]
    assert "2.0 h" in rows["BTC/USDT"] and "2.2 h" in rows["ETH/USDT"]  # 30 s and 630 s, two hours on
    feed = as_json["feed"]
    assert feed["state"] == "old" and feed["stale_symbols"] == ["ETH/USDT"] and feed["commander_running"] is True
    assert feed["oldest_bar_age_s"] >= 7830 and as_json["running"] is True


def test_a_stopped_commander_s_last_feed(data_dir: Path) -> None:
    write_feed(data_dir, stale=False)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "feed: as of " in result.stdout and ", commander not running: binance 1m websocket" in result.stdout
