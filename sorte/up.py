"""`sorte up`: everything in one process, on embedded defaults.

The commander trades the replay feed in paper mode through its blue/green slots; the status
page serves on 127.0.0.1; the Telegram bot polls when a token is set; the agent answers
requests from both with the configured LLM (the embedded SmolLM2 by default) and picks up the
runs a previous `sorte up` left half-way. Ctrl-C (or SIGTERM) stops everything cleanly; the
next `sorte up` resumes from the commander's history and ledger, the agent's checkpoints and
the bot's saved offset."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field

from commander.engine import Commander, CommanderReport
from commander.inbox import commander_running
from commander.operations import EventReporter, existing_history
from commander.status import commander_dir
from sorte import paths
from sorte.config import Settings
from sorte.errors import SorteError

log = structlog.get_logger("sorte.up")
Say = Callable[[str], None]
STOP_TIMEOUT_S = 30.0


class UpReport(BaseModel):
    commander: CommanderReport | None = None
    web_port: int | None = None
    telegram: bool = False
    resumed_runs: list[str] = Field(default_factory=list)


class AlreadyUp(SorteError):
    """Another `sorte up` or `sorte commander` runs on this data directory."""


class ComponentFailed(SorteError):
    """The commander, the status page or the bot stopped with an error; the others were stopped too."""


def agent_model(settings: Settings) -> tuple[bool, str]:
    """Whether the agent's model can answer, and what it is, for the start-up lines."""
    if settings.llm.profile == "ollama":
        url = settings.llm.providers["ollama"].base_url
        return True, f"Ollama at {url} (reference models), the embedded model as fallback"
    from sorte.llm.embedded import embedded_model_path
    from sorte.llm.errors import LLMUnavailable

    try:
        embedded_model_path()
        import llama_cpp  # noqa: F401  (the embedded backend; compiled by `make install-llm`)
    except (LLMUnavailable, ImportError) as exc:
        return False, f"the embedded model cannot load ({exc}); run `make install-llm`"
    return True, "the embedded SmolLM2-135M-Instruct (llama.cpp, in-process)"


async def up(
    settings: Settings,
    say: Say,
    stop: asyncio.Event,
    *,
    max_ticks: int | None = None,
    exit_when_done: bool = False,
    llm: Any = None,
) -> UpReport:
    """Run until ``stop`` is set (or, with ``exit_when_done``, until the replay ends)."""
    folder = commander_dir(settings.data_dir)
    if commander_running(folder):
        raise AlreadyUp(
            f"Sorte already runs on {settings.data_dir.resolve()} (sorte up or sorte commander): stop it first"
        )
    commander = Commander(settings)  # a bad configuration or feed fails here, before anything starts
    report = UpReport(telegram=settings.telegram.configured)
    ok, model = agent_model(settings)
    say(f"agent: {model}")
    if not ok:
        log.warning("up.agent_model_missing", detail=model)

    tasks: dict[str, asyncio.Task] = {}
    tasks["commander"] = asyncio.create_task(_trade(commander, say, max_ticks), name="commander")
    tasks["web"] = asyncio.create_task(_web(settings, stop, say, report, llm), name="web")
    if settings.telegram.configured:
        tasks["telegram"] = asyncio.create_task(_telegram(settings, stop, llm), name="telegram")
        say("Telegram: the bot is polling; write to it from an allowed account")
    else:
        say(
            "Telegram: off. To talk to Sorte from Telegram set SORTE_TELEGRAM__TOKEN (from @BotFather) and "
            'SORTE_TELEGRAM__USERS=\'{"<your user id>": "operator"}\' in .env and start again; meanwhile '
            '`sorte ask "..."` works in another terminal'
        )
    tasks["resume"] = asyncio.create_task(_resume_runs(settings, say, report, llm), name="resume")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    failure: BaseException | None = None
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait([stopping, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                name = task.get_name()
                tasks.pop(name)
                error = _finished(name, task, say, report)
                if error is not None and name != "resume":
                    failure = failure or error
                    stop.set()  # a component that died takes the rest down: half a Sorte misleads
                if name == "commander" and (exit_when_done or max_ticks is not None):
                    stop.set()
    finally:
        say("stopping: finishing the step in flight, stopping the slots")
        commander.stop()
        stop.set()
        await _drain(tasks, say, report)
        stopping.cancel()
    if failure is not None:
        raise ComponentFailed(f"{type(failure).__name__}: {failure}") from failure
    return report


async def _trade(commander: Commander, say: Say, max_ticks: int | None) -> CommanderReport:
    history = existing_history(commander.settings)
    with contextlib.nullcontext() if history is None else history:
        reporter = EventReporter(say, history)  # what happens from now on (recovery included), not the past

    def observe(c: Commander) -> bool:
        reporter.poll(c.history, throttle=True)
        return False

    return await commander.run(max_ticks, observe)


async def _web(settings: Settings, stop: asyncio.Event, say: Say, report: UpReport, llm: Any) -> None:
    from sorte.web import serve

    def ready(port: int) -> None:
        report.web_port = port
        token = "" if settings.web.token else " (read-only: set SORTE_WEB__TOKEN to approve, roll back or pause)"
        say(f"status page: http://{settings.web.host}:{port}/{token}")

    await serve(settings, stop, llm=llm, ready=ready)


async def _telegram(settings: Settings, stop: asyncio.Event, llm: Any) -> None:
    from sorte.telegram import run_bot

    await run_bot(settings, stop, llm=llm)


async def _resume_runs(settings: Settings, say: Say, report: UpReport, llm: Any) -> None:
    from sorte.agent import runs as agent
    from sorte.service import reading

    unfinished = [v.run_id for v in agent.runs(settings) if v.status == "running"]
    if not unfinished:
        return
    say(f"agent: resuming {len(unfinished)} unfinished run(s): {', '.join(unfinished)}")
    for run_id in unfinished:
        view = await agent.resume(settings, run_id, llm=llm, reader=reading)
        report.resumed_runs.append(run_id)
        say(f"agent: run {run_id} is {view.status}" + (f" ({view.outcome})" if view.outcome else ""))


def _finished(
    name: str, task: asyncio.Task, say: Say, report: UpReport, stopping: bool = False
) -> BaseException | None:
    """Report how a component ended; its exception, if it failed."""
    if task.cancelled():
        return None
    exc = task.exception()
    if exc is not None:
        log.error("up.component_failed", component=name, error=str(exc))
        say(f"{name} stopped: {type(exc).__name__}: {exc}")
        return exc
    if name == "commander":
        report.commander = task.result()
        if not stopping:
            ticks = report.commander.ticks
            say(f"commander: the replay ended after {ticks} steps; the status page stays up (Ctrl-C stops)")
    return None


async def _drain(tasks: dict[str, asyncio.Task], say: Say, report: UpReport) -> None:
    """Let the components stop on their own (they watch ``stop``); an agent run is cancelled
    (its checkpoints let the next `sorte up` continue it)."""
    if "resume" in tasks:
        tasks["resume"].cancel()
    for name, task in tasks.items():
        done, _ = await asyncio.wait([task], timeout=STOP_TIMEOUT_S)
        if not done:
            say(f"{name} did not stop within {STOP_TIMEOUT_S:g} s: cancelled")
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            continue
        _finished(name, task, say, report, stopping=True)


def log_file(settings: Settings) -> Path:
    return paths.log_file(settings.data_dir)
