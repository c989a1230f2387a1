"""``sorte positions``, ``sorte trades`` and ``sorte profit``: the book, as Telegram and the status page show it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sorte.cli.edit import ConfigOpt, _fail, _settings
from sorte.errors import SorteError

console = Console()
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _dump(rows: list) -> None:
    console.file.write(json.dumps([r.model_dump(mode="json") for r in rows], indent=2) + "\n")


def positions_cmd(as_json: bool = JsonOpt, config: Path | None = ConfigOpt) -> None:
    """Open positions of the book the commander trades (else `sorte run`'s), with their last price."""
    from sorte import service

    try:
        rows = service.positions(_settings(config))
    except SorteError as exc:
        _fail(exc)
    if as_json:
        return _dump(rows)
    if not rows:
        console.print("no open positions")
        return
    table = Table("symbol", "side", "qty", "entry", "last", "unrealised", "strategy", "since", title="positions")
    for p in rows:
        last = "-" if p.last_price is None else f"{p.last_price:.4f}"
        pnl = "-" if p.unrealised_pnl is None else f"{p.unrealised_pnl:+.2f}"
        table.add_row(
            p.symbol, p.side, f"{p.qty:.4f}", f"{p.entry_price:.4f}", last, pnl, p.strategy, _when(p.opened_at)
        )
    console.print(table)


def trades_cmd(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10_000, help="How many fills, newest first"),
    as_json: bool = JsonOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """The latest fills: entries, and exits with their realised PnL."""
    from sorte import service

    try:
        rows = service.trades(_settings(config), limit=limit)
    except SorteError as exc:
        _fail(exc)
    if as_json:
        return _dump(rows)
    if not rows:
        console.print("no trades yet")
        return
    table = Table("when", "symbol", "side", "qty", "price", "fee", "purpose", "pnl", "strategy", title="trades")
    for t in rows:
        pnl = f"{t.realised_pnl:+.2f}" if t.purpose != "open" else ""
        table.add_row(
            _when(t.at), t.symbol, t.side, f"{t.qty:.4f}", f"{t.price:.4f}", f"{t.fee:.2f}", t.purpose, pnl, t.strategy
        )
    console.print(table)


def profit_cmd(as_json: bool = JsonOpt, config: Path | None = ConfigOpt) -> None:
    """Equity, return, realised PnL, fees, win rate and drawdown so far."""
    from sorte import service

    try:
        p = service.profit(_settings(config))
    except SorteError as exc:
        _fail(exc)
    if p is None:
        console.print("nothing traded yet: `sorte up` (or `sorte run`) starts trading")
        return
    if as_json:
        console.file.write(p.model_dump_json(indent=2) + "\n")
        return
    win = "-" if p.win_rate is None else f"{p.win_rate:.0%}"
    table = Table("equity", "return", "realised", "fees", "closed", "win rate", "max drawdown", "steps", title="profit")
    table.add_row(
        f"{p.equity:.2f}",
        f"{p.return_pct:+.2f}%",
        f"{p.realised_pnl:+.2f}",
        f"{p.fees:.2f}",
        str(p.closed_trades),
        win,
        f"{p.max_drawdown:.1%}",
        str(p.steps),
    )
    console.print(table)
