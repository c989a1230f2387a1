"""A live account's last reconciliation reaches `sorte status` (line and JSON) and the service's
overview: a mismatch says what differs and turns the health to degraded; a paper account shows
nothing of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commander.history import DeploymentHistory
from commander.lease import Lease
from commander.reconcile import Reconciliation, write_reconciliation
from commander.status import HISTORY_FILE
from sorte import paths, service
from sorte.cli import status as status_module
from sorte.cli.main import app
from sorte.config import Settings
from tests.feed_health import commander_lock


@pytest.fixture()
def data_dir(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(status_module.console, "width", 250)
    return tmp_path / "var"


def reconciled(data_dir: Path, ok: bool, differences: list[str] | None = None) -> None:
    folder = paths.account_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    result = Reconciliation(epoch=3, ok=ok, differences=differences or [], open_orders=2, at=time.time() - 30)
    write_reconciliation(folder, result)


def test_a_paper_account_shows_no_reconciliation(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0 and "account:" not in result.stdout
    assert json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["account"] is None


def test_a_reconciled_account_and_one_that_differs(data_dir: Path) -> None:
    reconciled(data_dir, True)
    out = CliRunner().invoke(app, ["status"]).stdout
    assert "account: reconciled at epoch 3 30 s ago: 2 open orders, as the ledger says" in out
    reconciled(data_dir, False, ["BTC balance is 0.5 at the exchange, the ledger accounts for 0"])
    out = CliRunner().invoke(app, ["status"]).stdout
    assert "TRADING REFUSED: the account differs from the ledger: BTC balance is 0.5" in out
    as_json = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["account"]
    assert as_json["ok"] is False and as_json["epoch"] == 3 and len(as_json["differences"]) == 1


def test_the_overview_is_degraded_while_the_account_differs(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    folder = paths.commander_dir(data_dir)
    lease = Lease(folder)
    epoch = lease.acquire("blue", None).epoch
    lease.close()
    history = DeploymentHistory(folder / HISTORY_FILE)
    d = history.create("a" * 40, "blue", "test")
    for state in ("starting", "promoting"):
        history.transition(d.id, state, "first deployment")
    history.transition(d.id, "active", "first deployment", epoch=epoch)
    history.close()
    with commander_lock(data_dir):
        reconciled(data_dir, True)
        view = service.overview(settings)
        assert view.account is not None and view.account.ok and view.health == "trading"
        reconciled(data_dir, False, ["open order manual-1 (buy 1.0 ETH/USDT) at the exchange is not in the ledger"])
        view = service.overview(settings)
        assert view.health == "degraded" and view.account is not None and not view.account.ok
