"""``sorte status``: the commander's lease, slots and deployments."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sorte.errors import SorteError

console = Console()


def _deployment(d) -> str:
    if d is None:
        return "-"
    epoch = f" epoch {d.epoch}" if d.epoch is not None else ""
    return f"#{d.id} {d.commit[:12]} {d.state}{epoch}" + (f" ({d.reason})" if d.reason else "")


def status_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file"),
) -> None:
    """Show the order-writer lease, the blue and green slots, and the current and previous deployments."""
    from commander.status import status
    from sorte.cli.edit import _fail, _settings

    try:
        report = status(_settings(config).data_dir)
    except SorteError as exc:
        _fail(exc)
    if as_json:
        console.file.write(report.model_dump_json(indent=2) + "\n")
        return
    lease = report.lease
    holder = f"{lease.holder} at epoch {lease.epoch}" if lease.holder else f"free (epoch {lease.epoch})"
    console.print(f"[bold]commander[/]: {'running' if report.running else 'not running'}", highlight=False)
    console.print(f"[bold]lease[/]: {holder}", highlight=False)
    table = Table("slot", "deployment", title="slots")
    for slot, d in report.slots.items():
        table.add_row(slot, _deployment(d))
    console.print(table)
    console.print(f"[bold]active[/]: {_deployment(report.active)}", highlight=False)
    console.print(f"[bold]previous[/]: {_deployment(report.previous)}", highlight=False)
    if not report.recent:
        console.print("no deployments yet")
    for alert in report.alerts:
        text = escape(f"{alert.get('kind')}: {alert.get('message')}")
        console.print(f"[yellow]alert[/] {text}", highlight=False)
