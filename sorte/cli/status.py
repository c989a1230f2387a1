"""``sorte status``: the commander's lease, slots and deployments, the market feed and, on a
live account, its last reconciliation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sorte.errors import SorteError

if TYPE_CHECKING:
    from sorte.service import FeedView

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
    """Show the order-writer lease, the blue and green slots, the current and previous deployments
    and the market feed."""
    from commander.status import status
    from sorte.cli.edit import _fail, _settings
    from sorte.service import account, feed

    try:
        settings = _settings(config)
        report = status(settings.data_dir)
        view = feed(settings)
        reconciled = account(settings)
    except SorteError as exc:
        _fail(exc)
    if as_json:
        data = {
            **report.model_dump(mode="json"),
            "feed": view.model_dump(mode="json") if view else None,
            "account": reconciled.model_dump(mode="json") if reconciled else None,
        }
        console.file.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
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
    _print_feed(view)
    if reconciled is not None:  # a live account
        colour = "green" if reconciled.ok else "red"
        console.print(f"[bold]account[/]: [{colour}]{escape(reconciled.summary)}[/]", highlight=False)


def _print_feed(view: FeedView | None) -> None:
    from sorte.service import seconds_text

    if view is None:
        console.print("[bold]feed[/]: none yet (the commander writes it once it runs)", highlight=False)
        return
    colour = {"live": "green", "stale": "red", "old": "yellow"}[view.state]
    console.print(f"[bold]feed[/]: [{colour}]{escape(view.summary)}[/]", highlight=False)
    console.print(
        f"[bold]feed figures[/]: snapshot {seconds_text(view.snapshot_age_s)} ago, "
        f"clock offset {view.clock_offset_s:+.3f} s, {view.poll_failures} failed polls, "
        f"{view.gaps} gaps, new entries {'allowed' if view.entries_allowed else 'blocked'}",
        highlight=False,
    )
    table = Table(
        "symbol", "last bar (UTC)", "age", "lag", "stale", title=escape(f"feed {view.source} {view.timeframe}")
    )
    for s in view.symbols:
        stale = "[red]stale[/]" if s.stale else "no"
        table.add_row(
            escape(s.symbol), _when(s.last_bar_ts), seconds_text(s.last_bar_age_s), seconds_text(s.lag_s), stale
        )
    console.print(table)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
