"""Structured logging (structlog): console lines for people, JSON lines for machines."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import structlog
from structlog.typing import EventDict, Processor

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is at the time of the call, not at configuration
    (a test harness or a daemon may replace the stream later)."""

    def __init__(self, *args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class FileSink:
    """A processor that appends each event as one JSON line to a file (what `/logs` and the
    status page read), and passes the event on unchanged to the console renderer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def __call__(self, logger: object, method: str, event_dict: EventDict) -> EventDict:
        os.write(self.fd, (json.dumps(event_dict, default=str) + "\n").encode())
        return event_dict


def _console_at_least(level: str):
    """Drop events below ``level`` before the console renderer (the file sink saw them)."""
    floor = LEVELS[level]

    def keep(logger: object, method: str, event_dict: dict) -> dict:
        name = str(event_dict.get("level", "info"))
        if LEVELS.get(name, logging.CRITICAL if name == "critical" else logging.INFO) < floor:
            raise structlog.DropEvent
        return event_dict

    return keep


def setup_logging(
    level: str = "info", fmt: str = "console", file: Path | None = None, console_level: str | None = None
) -> None:
    """``file``: also every event as a JSON line there; ``console_level``: a quieter console."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if file is not None:
        processors.append(FileSink(file))
    if console_level:
        processors.append(_console_at_least(console_level))
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=False,
    )
