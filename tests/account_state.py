"""A live account's last reconciliation, written the way the commander's gateway writes it, for
the front-end tests (the CLI, the page, the bot)."""

from __future__ import annotations

import time
from pathlib import Path

from commander.reconcile import BalanceOff, Reconciliation, write_reconciliation
from sorte import paths

DEPOSIT = BalanceOff(asset="USDT", exchange=11_000.0, ledger=10_000.0)


def reconciled(
    data_dir: Path, ok: bool, balances: tuple[BalanceOff, ...] = (), others: tuple[str, ...] = (), at: float = 0
) -> None:
    """``others``: differences that are not balances (a foreign order, a foreign fill)."""
    folder = paths.account_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    differences = [*others, *(b.describe() for b in balances)]
    result = Reconciliation(
        epoch=3, ok=ok, differences=differences, balances=list(balances), open_orders=2, at=at or time.time() - 30
    )
    write_reconciliation(folder, result)
