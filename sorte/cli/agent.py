"""``sorte ask``, ``sorte runs`` and ``sorte resume``: the agent from the terminal."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sorte.agent.views import Decision, RunView
from sorte.config import Settings
from sorte.errors import SorteError

console = Console()
err = Console(stderr=True)
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config file (else SORTE_CONFIG or ./sorte.yaml)")
runs_app = typer.Typer(add_completion=False, invoke_without_command=True, help="The agent's runs.")

_NODE_TEXT = {
    "receive": "checking who asks",
    "interpret": "understanding the request",
    "answer": "answering",
    "recall": "recalling lessons",
    "optimise": "searching the parameters (backtests in the sandbox)",
    "plan": "planning the edit",
    "edit": "editing on a branch",
    "validate": "validating in the sandbox",
    "approve": "asking for approval",
    "publish": "merging",
    "deploy": "handing over to the commander",
    "learn": "storing the lesson",
    "report": "reporting",
}


def _progress(node: str, event: str, info: dict) -> None:
    if event == "enter":
        err.print(f"[dim]→[/] {_NODE_TEXT.get(node, node)}…", highlight=False)
    elif event == "leave" and info.get("duration_s", 0) >= 1:
        err.print(f"  [dim]{node} took {info['duration_s']:.1f}s[/]", highlight=False)


def _restate(settings: Settings, text: str) -> None:
    """Say at once how a change was read (tier 1, no model), before the agent and its imports
    start: the trader sees "momentum.stop_loss: 0.02 → 0.03" while it is being validated."""
    from sorte import paths
    from sorte.interpret import Interpreter, build_catalogue

    try:
        reading = Interpreter(build_catalogue(paths.repo_root(settings))).read(text)
    except SorteError:
        return  # the agent reports it
    if reading.action == "edit":
        err.print(f"  {escape(reading.message)}", highlight=False)


def _show_approval(view: RunView) -> None:
    err.print(f"\n[bold]Plan:[/] {escape(view.plan_summary)}")  # the plan's words, not markup
    if view.diff:
        err.print(view.diff, highlight=False, markup=False)
    err.print(view.verdict_text, highlight=False, markup=False)


def _decide_interactively(view: RunView, approve: bool | None, no_input: bool) -> Decision | None:
    if approve is not None:
        return Decision(approve=approve, by="cli:local")
    if no_input or not sys.stdin.isatty():
        err.print(f"run {view.run_id} waits for approval: sorte resume {view.run_id} --approve | --reject")
        return None
    return Decision(approve=typer.confirm("Approve and merge this change?", default=False), by="cli:local")


def _finish(view: RunView) -> None:
    console.print(view.reply or f"run {view.run_id}: {view.status}", highlight=False, markup=False)
    if view.status == "done" and view.outcome in ("failed", "refused", "unauthorised"):
        raise typer.Exit(1)


def ask_cmd(
    text: str = typer.Argument(..., help="What to do, in Portuguese or English"),
    approve: bool | None = typer.Option(None, "--approve/--reject", help="Answer the approval without asking"),
    no_input: bool = typer.Option(False, "--no-input", help="Never prompt; leave the run waiting for approval"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the agent on a request: plan, edit, validate, ask for approval, merge."""
    from sorte.cli.edit import _fail, _settings

    try:
        settings = _settings(config)
        _restate(settings, text)
        from sorte.agent import runs  # LangGraph takes a second to import: after the reading
        from sorte.service import reading

        view = asyncio.run(runs.ask(settings, text, on_event=_progress, reader=reading))
        if view.status == "awaiting_approval":
            _show_approval(view)
            decision = _decide_interactively(view, approve, no_input)
            if decision is not None:
                view = asyncio.run(runs.decide(settings, view.run_id, decision, on_event=_progress, reader=reading))
    except SorteError as exc:
        _fail(exc)
    _finish(view)


def resume_cmd(
    run_id: str | None = typer.Argument(None, help="Run id (sorte runs lists them); none: every unfinished run"),
    approve: bool | None = typer.Option(None, "--approve/--reject", help="Answer a pending approval"),
    config: Path | None = ConfigOpt,
) -> None:
    """Continue a run that stopped (crash or restart), or answer its approval; without an id,
    continue every run left half-way."""
    from sorte.agent import runs
    from sorte.cli.edit import _fail, _settings
    from sorte.service import reading

    try:
        settings = _settings(config)
        if run_id is None:
            views = asyncio.run(runs.resume_all(settings, on_event=_progress, reader=reading))
            for v in views:
                console.print(f"{v.run_id}: {v.status} {v.outcome} {v.reply}", highlight=False, markup=False)
            if not views:
                console.print("no unfinished runs")
            return
        view = asyncio.run(runs.resume(settings, run_id, on_event=_progress, reader=reading))
        if view.status == "awaiting_approval":
            _show_approval(view)
            decision = _decide_interactively(view, approve, False)
            if decision is not None:
                view = asyncio.run(runs.decide(settings, run_id, decision, on_event=_progress, reader=reading))
    except SorteError as exc:
        _fail(exc)
    _finish(view)


@runs_app.callback()
def runs_cmd(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """List the agent's runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from sorte.agent import runs
    from sorte.cli.edit import _fail, _settings

    try:
        views = runs.runs(_settings(config))
    except SorteError as exc:
        _fail(exc)
    table = Table("run", "status", "outcome", "intent", "strategy", "attempts", "request", title="Sorte runs")
    for v in views:
        table.add_row(v.run_id, v.status, v.outcome, v.intent, v.strategy or "", str(v.attempts), v.request[:60])
    console.print(table if views else "no runs yet")


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Run id"), config: Path | None = ConfigOpt) -> None:
    """One run: request, plan, diff, verdict and reply."""
    from sorte.agent import runs
    from sorte.cli.edit import _fail, _settings

    try:
        v = runs.run(_settings(config), run_id)
    except SorteError as exc:
        _fail(exc)
    console.print(f"[bold]{v.run_id}[/] {v.status} {v.outcome}  ({v.sender}, {v.updated_at})", highlight=False)
    console.print(f"request: {v.request}", highlight=False, markup=False)
    if v.plan_summary:
        console.print(f"plan: {v.plan_summary} (attempts {v.attempts}, pass@ {v.pass_at})", markup=False)
    if v.branch:
        console.print(f"branch: {v.branch} {v.commit[:12]}", markup=False)
    if v.diff:
        console.print(v.diff, highlight=False, markup=False)
    if v.verdict_text:
        console.print(v.verdict_text, highlight=False, markup=False)
    console.print(f"reply: {v.reply}", highlight=False, markup=False)
