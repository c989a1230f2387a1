"""`sorte positions`, `sorte trades` and `sorte profit` read the book through the service layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sorte.cli.main import app
from sorte.config import Settings
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import BUY, SELL, Fill, Position


@pytest.fixture()
def book(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SORTE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")  # whole cells in the tables
    ledger = Ledger(settings.data_dir / "paper" / "ledger.db")
    opened = Fill("a1", "ALPHA", BUY, 2.0, 100.0, 0.2, 3, 1_700_000_000.0, "open", "momentum")
    closed = Fill("a1x", "ALPHA", SELL, 2.0, 110.0, 0.22, 9, 1_700_000_600.0, "take_profit", "momentum", 19.58)
    held = Fill("b1", "BRAVO", BUY, 1.0, 50.0, 0.05, 10, 1_700_000_700.0, "open", "breakout")
    position = Position("BRAVO", 1.0, 50.0, 10, 1_700_000_700.0, "breakout", stop_price=48.0)
    account = {"cash": 9_969.0, "realized_pnl": 19.58, "fees": 0.47}
    ledger.commit_step(0, 1.0, [], [opened, closed], {}, account, 10_000.0, {}, [])
    ledger.commit_step(1, 2.0, [], [held], {"BRAVO": position}, account, 10_019.0, {}, [])
    ledger.close()
    return settings


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_book_commands_as_json(book: Settings) -> None:
    trades = json.loads(cli("trades", "--json").output)
    assert [t["client_order_id"] for t in trades] == ["b1", "a1x", "a1"], "newest first"
    assert json.loads(cli("trades", "-n", "1", "--json").output)[0]["purpose"] == "open"
    [pos] = json.loads(cli("positions", "--json").output)
    assert (pos["symbol"], pos["side"], pos["qty"], pos["last_price"]) == ("BRAVO", "long", 1.0, None)
    profit = json.loads(cli("profit", "--json").output)
    assert profit["equity"] == 10_019.0 and profit["closed_trades"] == 1 and profit["win_rate"] == 1.0


def test_book_commands_as_tables_and_on_an_empty_book(book: Settings, tmp_path: Path) -> None:
    out = cli("trades").output
    assert "take_profit" in out and "+19.58" in out
    assert "BRAVO" in cli("positions").output
    assert "+0.19%" in cli("profit").output
    empty = {"SORTE_DATA_DIR": str(tmp_path / "empty")}
    assert "nothing traded yet" in CliRunner().invoke(app, ["profit"], env=empty).output
    assert "no trades yet" in CliRunner().invoke(app, ["trades"], env=empty).output
    assert CliRunner().invoke(app, ["trades", "-n", "0"], env=empty).exit_code == 2
