"""``sorte validate BRANCH``: the guardian's verdict on a branch, with live progress per gate."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from sorte.errors import SorteError

if TYPE_CHECKING:  # the guardian package is heavy (pandas): loaded when a validation runs
    from guardian.verdict import GateResult

console = Console()
err = Console(stderr=True)

EXIT = {"pass": 0, "fail": 1, "inconclusive": 3}
_ICON = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "timeout": "[red]TIMEOUT[/]"}


class _GateProgress:
    """One spinner line per gate; called from the gate threads."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def __call__(self, gate: str, state: str, result: GateResult | None) -> None:
        with self.lock:
            if state == "start":
                self.tasks[gate] = self.progress.add_task(f"{gate}: running", total=1)
                return
            assert result is not None
            status = _ICON.get(result.status, f"[yellow]{escape(result.status)}[/]")
            # A summary names candidate paths: "[red]" in a file name is text, not markup.
            summary = escape(result.summary)
            self.progress.update(self.tasks[gate], completed=1, description=f"{gate}: {status} {summary}")


def validate_cmd(
    branch: str = typer.Argument(..., help="Run id, branch or commit to validate"),
    baseline: str | None = typer.Option(None, "--baseline", "-b", help="Ref to compare with (default: base branch)"),
    output: str = typer.Option("text", "--format", "-f", help="text | markdown | json"),
    sandbox: str | None = typer.Option(None, "--sandbox", help="docker | local | auto (overrides the config)"),
    fail_fast: bool | None = typer.Option(
        None, "--fail-fast/--all-gates", help="Stop at the first failed gate (default: guardian.fail_fast)"
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file"),
) -> None:
    """Run the guardian (integrity, security, tests, benchmark) on BRANCH and print the verdict.

    Exit code: 0 pass, 1 fail, 3 inconclusive, 2 bad input.
    """
    from guardian.validate import validate
    from sorte.cli.edit import _settings

    fmt = _format(output)
    try:
        settings = _settings(config)
        if sandbox is not None:
            settings = settings.model_copy(update={"sandbox": _sandbox(sandbox)})
        if fail_fast is not None:
            guardian = settings.guardian.model_copy(update={"fail_fast": fail_fast})
            settings = settings.model_copy(update={"guardian": guardian})
        with Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress:
            verdict = validate(settings, branch, baseline=baseline, progress=_GateProgress(progress))
    except SorteError as exc:
        _error(str(exc))
    except OSError as exc:  # the data folder or a temporary folder could not be written
        _error(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    if fmt == "json":
        console.file.write(verdict.to_json() + "\n")
    elif fmt == "markdown":
        console.file.write(verdict.to_markdown() + "\n")
    else:
        console.print(verdict.to_text(max_findings=20), highlight=False, markup=False)
    raise typer.Exit(EXIT[verdict.overall])


def _error(message: str) -> NoReturn:
    """One line on stderr and exit code 2; the message may name hostile paths, so no markup."""
    first = message.strip().splitlines()[0] if message.strip() else "validation could not run"
    err.print(f"[bold red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _format(value: str) -> Literal["text", "markdown", "json"]:
    if value not in ("text", "markdown", "json"):
        from rich.markup import escape  # the value is the user's, markup and all

        err.print(f"[bold red]error:[/] --format must be text, markdown or json, not {escape(repr(value))}")
        raise typer.Exit(2)
    return value  # type: ignore[return-value]


def _sandbox(value: str) -> str:
    if value not in ("docker", "local", "auto"):
        from rich.markup import escape  # the value is the user's, markup and all

        err.print(f"[bold red]error:[/] --sandbox must be docker, local or auto, not {escape(repr(value))}")
        raise typer.Exit(2)
    return value
