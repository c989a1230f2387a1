"""``sorte edit`` and ``sorte branches``: edit plans applied on run branches, and those branches."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Column, Table

from sorte.config import Settings, load_settings
from sorte.errors import SorteError
from sorte.logging import setup_logging

console = Console()
err = Console(stderr=True)
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (else SORTE_CONFIG or ./sorte.yaml)")
branches_app = typer.Typer(
    add_completion=False, invoke_without_command=True, help="List, merge or abandon Sorte's run branches."
)


def _settings(config: Path | None) -> Settings:
    settings = load_settings(config)
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _fail(exc: SorteError) -> None:
    # errors echo paths, branches and ids: "[bold]x[/]" must print as typed, not as markup
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    _isolation_warning()
    raise typer.Exit(2)


def _isolation_warning() -> None:
    """One line when plan code was validated without namespaces (never a silent fallback).
    Not loaded means no plan code ran in this process: nothing to say, and nothing imported."""
    sandboxed = sys.modules.get("sorte.editing.sandboxed")
    for warning in sandboxed.isolation_warnings() if sandboxed else []:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def print_diff(text: str) -> None:
    """Coloured on a terminal; verbatim otherwise, so that the output can be piped to ``git apply``."""
    if not text:
        err.print("[dim](no changes)[/]")
    elif console.is_terminal:
        console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
    else:
        console.file.write(text)


def edit_cmd(
    plan: Path = typer.Option(..., "--plan", help="Edit plan (JSON)"),
    request: str | None = typer.Option(None, "--request", "-r", help="The request the plan answers (commit message)"),
    run_id: str | None = typer.Option(None, "--run-id", help="Reuse this run's branch (default: a new run)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff; write and commit nothing"),
    config: Path | None = ConfigOpt,
) -> None:
    """Apply an edit plan on a new branch (its own worktree) and print the diff."""
    from sorte.editing import branches

    try:
        settings = _settings(config)
        outcome = branches.edit_on_branch(settings, branches.load_plan_file(plan), request, run_id, dry_run)
    except SorteError as exc:
        _fail(exc)
    _isolation_warning()
    if dry_run:
        err.print(f"dry run of run {escape(outcome.run_id)}: nothing written or committed")
    elif outcome.commit:
        err.print(f"run {escape(outcome.run_id)}: committed {outcome.commit[:12]} on [bold]{escape(outcome.branch)}[/]")
    else:
        kept = f"branch {outcome.branch} unchanged" if outcome.kept else "no branch kept"
        err.print(f"run {escape(outcome.run_id)}: the plan changes nothing ({escape(kept)})")
    print_diff(outcome.diff)


@branches_app.callback()
def branches_cmd(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """List Sorte's run branches: state, commits ahead/behind the base, last commit."""
    if ctx.invoked_subcommand is not None:
        return
    from sorte.editing import branches

    try:
        infos = branches.branches(_settings(config))
    except SorteError as exc:
        _fail(exc)
    table = Table(
        Column("run", no_wrap=True),
        Column("state", no_wrap=True),
        Column("ahead", justify="right"),
        Column("behind", justify="right"),
        "branch",
        "last commit",
        "date",
        "worktree",
        title="Sorte branches",
    )
    colours = {"open": "yellow", "merged": "green", "abandoned": "dim"}
    for i in infos:
        table.add_row(
            i.run_id,
            f"[{colours[i.state]}]{i.state}[/]",
            str(i.ahead),
            str(i.behind),
            i.branch,
            f"{i.last_sha} {i.last_subject}",
            i.last_date,
            str(i.worktree or "-"),
        )
    console.print(table if infos else "no Sorte branches")


@branches_app.command("diff")
def diff_cmd(run_id: str = typer.Argument(..., help="Run id"), config: Path | None = ConfigOpt) -> None:
    """Print a run branch's diff against its base."""
    from sorte.editing import branches

    try:
        text = branches.branch_diff(_settings(config), run_id)
    except SorteError as exc:
        _fail(exc)
    print_diff(text)


@branches_app.command("abandon")
def abandon_cmd(run_id: str = typer.Argument(..., help="Run id"), config: Path | None = ConfigOpt) -> None:
    """Delete a run's worktree and branch (its commits stay under refs/sorte/abandoned/)."""
    from sorte.editing import branches

    try:
        branches.abandon(_settings(config), run_id)
    except SorteError as exc:
        _fail(exc)
    console.print(f"run {run_id} abandoned")


@branches_app.command("merge")
def merge_cmd(
    run_id: str = typer.Argument(..., help="Run id"),
    mode: str | None = typer.Option(None, "--mode", help="ff (fast-forward) or merge (a merge commit)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Merge an approved run into its base branch."""
    from sorte.editing import branches

    try:
        if mode not in (None, "ff", "merge"):
            raise SorteError(f"--mode must be ff or merge, not {mode!r}")
        sha = branches.merge(_settings(config), run_id, mode)  # type: ignore[arg-type]
    except SorteError as exc:
        _fail(exc)
    console.print(f"run {run_id} merged: base now at {sha[:12]}")
