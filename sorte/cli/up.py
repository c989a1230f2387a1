"""``sorte up``: the commander on its feed, the status page, the agent and the Telegram bot."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from sorte.cli.feed_options import FeedOpt, SymbolsOpt, describe_feed, with_feed
from sorte.errors import SorteError

console = Console(stderr=True, soft_wrap=True)  # whole lines: logs and tests read them


def _say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {escape(message)}", highlight=False)


def up_cmd(
    interval: float | None = typer.Option(
        None,
        "--interval",
        min=0,
        help="Seconds between bar steps (default: the config's, else 1 s)",
    ),
    port: int | None = typer.Option(None, "--port", min=0, max=65535, help="Status page port (default 8090)"),
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="Stop when the replay ends"),
    max_ticks: int | None = typer.Option(None, "--max-ticks", min=1, hidden=True, help="Stop after N steps (tests)"),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file"),
    feed: str | None = FeedOpt,
    symbols: str | None = SymbolsOpt,
) -> None:
    """Start Sorte: the commander trading (paper; a replay or a live market), the page, the agent, Telegram."""
    from sorte.cli.edit import _fail
    from sorte.config import load_settings
    from sorte.logging import setup_logging
    from sorte.up import ComponentFailed, log_file, up

    try:
        settings = with_feed(load_settings(config), feed, symbols)
        pace = interval if interval is not None else (settings.commander.batch_interval_s or 1.0)
        update: dict[str, Any] = {"commander": settings.commander.model_copy(update={"batch_interval_s": pace})}
        if port is not None:
            update["web"] = settings.web.model_copy(update={"port": port})
        settings = settings.model_copy(update=update)
        setup_logging(settings.log_level, settings.log_format, file=log_file(settings), console_level="warning")
        _say(f"data: {settings.data_dir.resolve()} · logs: {log_file(settings)} · {describe_feed(settings)}")

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()

            def on_signal() -> None:
                _say("stopping (Ctrl-C again to force)")
                stop.set()
                for sig in (signal.SIGINT, signal.SIGTERM):  # a second one interrupts for real
                    loop.remove_signal_handler(sig)

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            return await up(settings, _say, stop, max_ticks=max_ticks, exit_when_done=exit_when_done)

        report = asyncio.run(main())
    except ComponentFailed as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}; everything was stopped")
        raise typer.Exit(1) from None
    except SorteError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _say("forced stop: the slots stop on their own when the commander goes; `sorte up` recovers")
        raise typer.Exit(130) from None
    ticks = report.commander.ticks if report.commander else 0
    _say(f"stopped cleanly after {ticks} steps; `sorte up` again picks up from here")
