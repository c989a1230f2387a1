"""``sorte pairs``: the pairs the selector chose (``sorte.market.pairs``) and why; ``--refresh``
selects again from the configured exchange now and saves the result."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from sorte.cli.edit import ConfigOpt, _fail, _settings
from sorte.errors import SorteError

if TYPE_CHECKING:
    from sorte.config import Settings
    from sorte.market.pairs import PairSelection

console = Console()


def pairs_cmd(
    refresh: bool = typer.Option(False, "--refresh", help="Select again from the configured exchange now, and save"),
    show_all: bool = typer.Option(False, "--all", help="Also list every rejected symbol and the filter that did it"),
    as_json: bool = typer.Option(False, "--json", help="Print the selection as JSON"),
    config: Path | None = ConfigOpt,
) -> None:
    """The pairs the selector chose (rank, score, 24 h volume, volatility, why), ranked by quote
    volume and volatility after the filters of market.pairs."""
    from sorte import paths
    from sorte.market.pairs import read_selection

    try:
        settings = _settings(config)
        path = paths.pairs_file(settings.data_dir)
        selection = asyncio.run(_refresh(settings)) if refresh else read_selection(path)
        if selection is None:
            raise SorteError(f"no pair selection saved yet ({path}): {_nothing_saved(settings)}")
    except SorteError as exc:
        _fail(exc)
    assert selection is not None
    if as_json:
        console.file.write(json.dumps(selection.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
        return
    _print(settings, selection, show_all)


def _nothing_saved(settings: Settings) -> str:
    name = settings.exchange.name
    if settings.market.pairs.enabled:
        return f"the commander has not selected any yet; `sorte pairs --refresh` selects from {name} now"
    return (
        "pair selection is off (set market.pairs.enabled=true, SORTE_MARKET__PAIRS__ENABLED=true, for the commander "
        f"to trade the selected pairs); `sorte pairs --refresh` shows what it would select from {name} now"
    )


async def _refresh(settings: Settings) -> PairSelection:
    from sorte import paths
    from sorte.market.cache import CandleCache
    from sorte.market.pairs import PairSelector

    pairs, timeframe = settings.market.pairs, settings.exchange.timeframe
    cache = None
    if pairs.volatility_lookback_bars:  # only cached candles: the collector's symbols
        cache = CandleCache(paths.candle_cache(settings.data_dir, settings.exchange.name))
    selector = PairSelector(
        settings,
        history="rest" if pairs.min_history_bars else None,
        candles=None if cache is None else (lambda symbol, n: cache.last(symbol, timeframe, n)),
    )
    try:
        return await selector.refresh()
    finally:
        await selector.close()
        if cache is not None:
            cache.close()


def _ago(seconds: float) -> str:
    from sorte.service import seconds_text

    return seconds_text(max(0.0, seconds))


def _print(settings: Settings, selection: PairSelection, show_all: bool) -> None:
    from sorte.market.pairs import filters_text, human

    s, now = selection.settings, time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(selection.at))
    due = selection.at + s.refresh_s - now
    next_refresh = f"next refresh in {_ago(due)}" if due > 0 else "a refresh is due"
    console.print(
        f"[bold]pairs[/] on {escape(selection.source)} quoted in {escape(selection.quote)}: "
        f"{len(selection.selected)} of {selection.tickers} tickers ({selection.eligible} passed the filters), "
        f"chosen {when} UTC, {_ago(now - selection.at)} ago; {next_refresh}",
        highlight=False,
    )
    pairs = settings.market.pairs
    if not pairs.enabled:
        console.print(
            "[yellow]pair selection is off (market.pairs.enabled=false): the commander trades runtime.symbols[/]",
            highlight=False,
        )
    if selection.source != settings.exchange.name or s != pairs:
        console.print(
            "[yellow]made on another exchange or with other market.pairs settings than the current ones: "
            "`sorte pairs --refresh` selects again[/]",
            highlight=False,
        )
    console.print(f"[bold]filters[/]: {escape(filters_text(s))}", highlight=False)
    weights = ", ".join(f"{k} {w:g}" for k, w in s.sort_keys.items() if w > 0)
    console.print(f"[bold]score[/]: percentile ranks among the pairs that passed, weighted {weights}", highlight=False)
    if selection.selected:
        table = Table(
            Column("#", justify="right"),
            Column("symbol", no_wrap=True),
            Column("score", justify="right"),
            Column("24 h volume", justify="right", no_wrap=True),
            Column("range", justify="right", no_wrap=True),
            "why",
            title="selected",
        )
        for p in selection.selected:
            table.add_row(
                str(p.rank),
                escape(p.symbol),
                f"{p.score:.2f}",
                f"{human(p.quote_volume)} {escape(selection.quote)}",
                f"{p.volatility_pct:.1f} %",
                escape(p.why.partition(": ")[2] or p.why),
            )
        console.print(table)
    else:
        console.print("[red]no pair passed the filters[/]", highlight=False)
    counts = selection.rejected_by()
    if not counts:
        return
    if show_all:
        table = Table(Column("symbol", no_wrap=True), Column("filter", no_wrap=True), "reason", title="rejected")
        for r in selection.rejected:
            table.add_row(escape(r.symbol), r.filter, escape(r.reason))
        console.print(table)
    summary = ", ".join(f"{n} by {f}" for f, n in counts.items())
    more = "" if show_all else " (--all lists them)"
    console.print(f"[bold]rejected[/]: {summary}{more}", highlight=False)
