"""``sorte lessons [QUERY]``: the agent's lessons, newest first, or the closest in meaning to QUERY."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Column, Table

from sorte.cli.edit import ConfigOpt, _fail, _settings
from sorte.errors import SorteError

console = Console()


def _when(lesson) -> str:
    return lesson.updated_at.strftime("%Y-%m-%d %H:%M")


def lessons_cmd(
    query: str | None = typer.Argument(None, help="Search the lessons by meaning (any language); else list the newest"),
    strategy: str | None = typer.Option(None, "--strategy", "-s", help="Only this strategy's lessons"),
    limit: int = typer.Option(10, "--limit", "-n", help="How many lessons"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    config: Path | None = ConfigOpt,
) -> None:
    """List the agent's lessons, or search them: `sorte lessons "aumenta o stop loss do momentum"`."""
    from pydantic import ValidationError

    from knowledge import KnowledgeSettings, Lesson, open_store

    try:
        if limit <= 0:
            raise SorteError(f"--limit must be positive, got {limit}")
        if query is not None and not query.strip():
            raise SorteError("the query is empty: give a few words, or no QUERY to list the newest lessons")
        settings = _settings(config)
        try:  # sorte's settings carry a knowledge section once config.py has one; else the environment
            ksettings = getattr(settings, "knowledge", None) or KnowledgeSettings()
        except ValidationError as exc:
            raise SorteError(f"invalid SORTE_KNOWLEDGE__ setting: {exc}") from exc
        store = open_store(ksettings, settings.data_dir)
        if query:
            hits: list[tuple[Lesson, float | None]] = list(store.recall(query, strategy=strategy, k=limit))
        else:
            hits = [(lesson, None) for lesson in store.list(limit, strategy=strategy)]
    except SorteError as exc:
        _fail(exc)
    if json_out:
        rows = [{"score": score, **lesson.model_dump(mode="json")} for lesson, score in hits]
        console.file.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    if not hits:
        console.print("no lessons" + (f" for strategy {strategy}" if strategy else ""))
        return
    columns = [Column("score", justify="right")] if query else []
    table = Table(
        *columns,
        Column("strategy", no_wrap=True),
        Column("outcome", no_wrap=True),
        "rule",
        "request",
        Column("seen", justify="right"),
        Column("when", no_wrap=True),
        title=f"lessons closest to {query!r}" if query else "newest lessons",
    )
    colours = {"merged": "green", "deployed": "green", "rejected": "yellow", "failed": "red", "rolled_back": "red"}
    for lesson, score in hits:
        colour = colours.get(lesson.outcome, "dim")
        cells = [f"{score:.3f}"] if query else []
        cells += [
            lesson.strategy,
            f"[{colour}]{lesson.outcome}[/]",
            lesson.rule,
            lesson.request,
            str(lesson.times_seen),
            _when(lesson),
        ]
        table.add_row(*cells)
    console.print(table)
