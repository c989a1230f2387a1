"""``sorte commander``, ``sorte deploy`` and ``sorte rollback``: blue/green deployments of the runtime."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sorte.cli.edit import ConfigOpt, _fail, _settings
from sorte.cli.feed_options import FeedOpt, SymbolsOpt, with_feed
from sorte.errors import SorteError

console = Console()
err = Console(stderr=True)

STATUS_EVERY_S = 0.5
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3
_STATE_COLOURS = {"active": "green", "warm": "green", "retired": "dim", "inconclusive": "yellow"}


def _step(message: str) -> None:
    console.print(f"[dim]·[/] {message}", highlight=False, soft_wrap=True)


def _failed(exc: SorteError) -> None:
    from rich.markup import escape  # the commander's message can quote a branch or a path

    err.print(f"[bold red]failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILED)


def commander_cmd(
    max_ticks: int | None = typer.Option(None, "--max-ticks", help="Stop after this many steps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No deployment events, only the summary"),
    config: Path | None = ConfigOpt,
    feed: str | None = FeedOpt,
    symbols: str | None = SymbolsOpt,
) -> None:
    """Run the commander in the foreground: the active slot trades, candidates run in shadow (Ctrl-C stops)."""
    from commander.operations import serve

    try:
        settings = with_feed(_settings(config), feed, symbols)
    except SorteError as exc:
        _fail(exc)
    last = 0.0
    with console.status("[bold]commander[/] starting", spinner="dots") as status:

        def observe(c) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < STATUS_EVERY_S:
                return
            last = now
            active = next((r for r in c.slots.values() if r.role == "active"), None)
            who = f"#{active.deployment.id} {active.slot} {active.deployment.commit[:12]}" if active else "-"
            epoch = c.lease.current().epoch
            status.update(f"[bold]commander[/] tick {c.tick} · active {who} · epoch {epoch}")

        try:
            report = serve(settings, None if quiet else _step, max_ticks, observe)
        except SorteError as exc:
            _fail(exc)
    table = Table("metric", "value", title="Commander")
    active = report.active
    rows = [
        ("ticks", str(report.ticks)),
        ("hand-overs", str(len(report.handoffs))),
        ("rollbacks", str(len(report.rollbacks))),
        ("restarts", str(report.restarts)),
        ("feed gaps", str(report.feed_gaps)),
        ("active", f"#{active.id} {active.slot} {active.commit[:12]} epoch {active.epoch}" if active else "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def deploy_cmd(
    ref: str = typer.Argument(..., help="Commit to deploy: a sha, a branch or a tag"),
    no_wait: bool = typer.Option(False, "--no-wait", help="Record the request and return (a commander carries it)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Deploy a commit: shadow run next to the active slot, analysis, hand-over, post-promotion watch.

    Exit status: 0 active, 1 rejected / rolled back / failed, 2 bad input, 3 inconclusive."""
    from commander.operations import RequestFailed, deploy

    try:
        d = deploy(_settings(config), ref, "cli", progress=_step, wait=not no_wait)
    except RequestFailed as exc:
        _failed(exc)
    except SorteError as exc:
        _fail(exc)
    if no_wait:
        console.print(
            f"deployment {d.id} requested: a running `sorte commander` carries it; `sorte status` follows it",
            highlight=False,
        )
        return
    _print_deployment(d)
    if d.state in ("active", "warm", "retired"):
        code = EXIT_OK
    elif d.state == "inconclusive":
        code = EXIT_INCONCLUSIVE
    else:
        code = EXIT_FAILED
        if d.state not in ("rejected", "rolled_back", "failed"):
            err.print(f"the commander stopped before deployment {d.id} settled (it is {d.state})", highlight=False)
    raise typer.Exit(code)


def _print_deployment(d) -> None:
    colour = _STATE_COLOURS.get(d.state, "red")
    table = Table("", "", title=f"Deployment {d.id}", show_header=False)
    table.add_row("commit", d.commit)
    table.add_row("slot", d.slot)
    table.add_row("state", f"[{colour}]{d.state}[/]")
    table.add_row("epoch", "-" if d.epoch is None else str(d.epoch))
    table.add_row("reason", d.reason or "-")
    console.print(table)
    analysis = d.analysis or {}
    checks = analysis.get("checks") or []
    if checks:
        colours = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
        t = Table("check", "kind", "outcome", "detail", title=f"Analysis: {analysis.get('verdict', '?')}")
        for c in checks:
            t.add_row(c["name"], c["kind"], f"[{colours.get(c['outcome'], 'white')}]{c['outcome']}[/]", c["detail"])
        console.print(t)


def rollback_cmd(
    to: int | None = typer.Option(None, "--to", help="Deployment id to bring back (default: the previous one)"),
    reason: str = typer.Option("manual rollback", "--reason", help="Why (kept in the deployment history)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Roll the active deployment back to the previous one (a lease hand-over when it is still warm).

    Exit status: 0 done or nothing to do, 1 failed, 2 bad input."""
    from commander.operations import RequestFailed
    from sorte.service import actions
    from sorte.service.access import LOCAL

    try:
        result = asyncio.run(actions.rollback(_settings(config), LOCAL, to, reason, progress=_step))
    except RequestFailed as exc:
        _failed(exc)
    except SorteError as exc:
        _fail(exc)
    console.print(result.message, highlight=False)
