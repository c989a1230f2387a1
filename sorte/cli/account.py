"""``sorte reconcile``: the live account's last reconciliation with the exchange, and
``--accept`` to take balances changed on purpose (a deposit, a withdrawal) as right."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sorte.cli.edit import ConfigOpt, _fail, _settings
from sorte.errors import SorteError

if TYPE_CHECKING:
    from sorte.config import Settings
    from sorte.service import AccountView

console = Console()
EXIT_OK, EXIT_REFUSED = 0, 1


def reconcile_cmd(
    accept: bool = typer.Option(
        False, "--accept", help="Take the balances that differ as right (a deposit, a withdrawal): trading resumes"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --accept: do not ask for confirmation"),
    wait_s: float = typer.Option(120.0, "--wait", min=0.0, help="Seconds to wait for a running commander to apply it"),
    as_json: bool = typer.Option(False, "--json", help="Print the reconciliation as JSON"),
    config: Path | None = ConfigOpt,
) -> None:
    """Show the live account's last reconciliation: what the exchange holds against what the
    ledger accounts for. With --accept, the balances that differ become the new baseline, if
    the exchange still holds them when the commander looks again.

    Exit status: 0 reconciled (or accepted and reconciled), 1 trading refused, 2 bad input."""
    from sorte.service import account

    try:
        settings = _settings(config)
        view = account(settings)
        if accept:
            _accept(settings, view, yes, wait_s)
            view = account(settings)
    except SorteError as exc:
        _fail(exc)
    if as_json:
        console.file.write(json.dumps(view.model_dump(mode="json") if view else None, indent=2) + "\n")
    elif view is None:
        console.print("no live account reconciled yet (runtime.mode=live under `sorte commander`)", highlight=False)
    else:
        _print(view)
    raise typer.Exit(EXIT_OK if view is None or view.ok else EXIT_REFUSED)


def _accept(settings: Settings, view: AccountView | None, yes: bool, wait_s: float) -> None:
    from sorte.service import accept_balances
    from sorte.service.access import LOCAL

    if view is not None and view.balances and not yes:
        _print(view)
        shown = ", ".join(f"{b.asset} {b.exchange:.8g}" for b in view.balances)
        if not typer.confirm(f"Accept {shown} as the account's right balances?"):
            raise typer.Exit(EXIT_REFUSED)
    with console.status("waiting for the commander's next reconciliation") as spinner:
        result = asyncio.run(accept_balances(settings, LOCAL, wait_s, progress=lambda m: spinner.update(escape(m))))
    console.print(result.message, highlight=False, soft_wrap=True)


def _print(view: AccountView) -> None:
    colour = "green" if view.ok else "red"
    console.print(f"[bold]account[/]: [{colour}]{escape(view.summary)}[/]", highlight=False, soft_wrap=True)
    if view.balances:
        table = Table("asset", "at the exchange", "the ledger accounts for", "difference", title="balances that differ")
        for b in view.balances:
            table.add_row(b.asset, f"{b.exchange:.8g}", f"{b.ledger:.8g}", f"{b.exchange - b.ledger:+.8g}")
        console.print(table)
        console.print("a deposit or a withdrawal? `sorte reconcile --accept` takes these balances as right")
