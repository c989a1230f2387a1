"""`sorte reconcile` shows a live account's last reconciliation; `--accept` records the
operator's word that the balances that differ are right (a deposit, a withdrawal) and waits
for a running commander to apply it. Nothing to accept: a clear error and nothing written."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commander.reconcile import read_acceptance
from sorte import paths, service
from sorte.cli import account as account_module
from sorte.cli.main import app
from sorte.config import Settings
from sorte.service.access import Principal
from tests.account_state import DEPOSIT, reconciled
from tests.feed_health import commander_lock

FOREIGN = "open order manual-1 (buy 1.0 ETH/USDT) at the exchange is not in the ledger"


@pytest.fixture()
def data_dir(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(account_module.console, "width", 200)
    return tmp_path / "var"


def test_nothing_reconciled_yet_and_a_matching_account(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == 0 and "no live account reconciled yet" in result.stdout
    reconciled(data_dir, True)
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == 0 and "reconciled at epoch 3" in result.stdout
    result = CliRunner().invoke(app, ["reconcile", "--accept", "--yes"])
    assert result.exit_code == 2 and "matched the ledger at epoch 3: there is nothing to accept" in result.stderr
    assert read_acceptance(paths.account_dir(data_dir)) is None


def test_a_refused_account_shows_the_balances_and_exits_1(data_dir: Path) -> None:
    reconciled(data_dir, False, (DEPOSIT,))
    result = CliRunner().invoke(app, ["reconcile"])
    assert result.exit_code == 1
    assert "TRADING REFUSED" in result.stdout and "USDT balance is 11000 at the exchange" in result.stdout
    assert "│ USDT  │ 11000" in result.stdout and "+1000" in result.stdout
    assert CliRunner().invoke(app, ["reconcile", "--json"]).stdout.count('"asset": "USDT"') == 1


def test_accept_asks_first_and_a_no_writes_nothing(data_dir: Path) -> None:
    reconciled(data_dir, False, (DEPOSIT,))
    result = CliRunner().invoke(app, ["reconcile", "--accept"], input="n\n")
    assert result.exit_code == 1 and "Accept USDT 11000 as the account's right balances?" in result.stdout
    assert read_acceptance(paths.account_dir(data_dir)) is None


def test_accept_without_a_commander_is_recorded_for_the_next_one(data_dir: Path) -> None:
    reconciled(data_dir, False, (DEPOSIT,))
    result = CliRunner().invoke(app, ["reconcile", "--accept", "--yes"])
    assert "no commander is running: the next one applies it" in result.stdout
    assert result.exit_code == 1  # still refused until a commander looks again
    request = read_acceptance(paths.account_dir(data_dir))
    assert request is not None and request.balances == {"USDT": 11_000.0} and request.by == "cli:local"
    (line,) = [a for a in service.read_audit(data_dir) if a["action"] == "accept_balances"]
    assert line["ok"] and line["balances"] == {"USDT": 11_000.0}


def test_only_balances_can_be_accepted(data_dir: Path) -> None:
    reconciled(data_dir, False, others=(FOREIGN,))
    result = CliRunner().invoke(app, ["reconcile", "--accept", "--yes"])
    assert result.exit_code == 2 and "cancel an order Sorte did not place" in result.stderr
    assert FOREIGN in result.stderr.replace("\n", " ")
    assert read_acceptance(paths.account_dir(data_dir)) is None


def test_accept_waits_for_the_running_commander_and_says_what_came_of_it(data_dir: Path) -> None:
    reconciled(data_dir, False, (DEPOSIT,))
    stop = threading.Event()

    def commander() -> None:  # what the gateway does: the next reconciliation after the request
        while not stop.wait(0.05):
            if read_acceptance(paths.account_dir(data_dir)) is not None:
                reconciled(data_dir, True, at=time.time())
                return

    with commander_lock(data_dir):
        threading.Thread(target=commander, daemon=True).start()
        result = CliRunner().invoke(app, ["reconcile", "--accept", "--yes", "--wait", "30"])
        stop.set()
    assert result.exit_code == 0, result.stdout
    assert "balances accepted; account reconciled at epoch 3" in result.stdout and "trading resumes" in result.stdout


def test_a_viewer_cannot_accept(data_dir: Path) -> None:
    reconciled(data_dir, False, (DEPOSIT,))
    viewer = Principal(channel="telegram", id="7", role="viewer")
    with pytest.raises(service.Forbidden):
        asyncio.run(service.accept_balances(Settings(data_dir=data_dir), viewer))
    assert read_acceptance(paths.account_dir(data_dir)) is None
