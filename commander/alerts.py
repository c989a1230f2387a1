"""Alerts for operators: promotions, rejections, rollbacks (with the reason), crashes, gaps.

Each alert is one structured log line and one line of ``<commander dir>/alerts.jsonl``,
which the front-ends (Telegram, the status page) read and push. The same alert (kind and
message) within ``dedupe_s`` is recorded once: a crash loop is one alert, not hundreds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("sorte.alerts")
ALERTS_FILE = "alerts.jsonl"


class Alerts:
    def __init__(self, directory: Path, dedupe_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(directory) / ALERTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dedupe_s, self.clock = dedupe_s, clock
        self._last: dict[tuple[str, str], float] = {}

    def emit(self, kind: str, message: str, **fields: Any) -> bool:
        """Record an alert; False when the same one was recorded within ``dedupe_s``."""
        now = self.clock()
        key = (kind, message)
        if now - self._last.get(key, float("-inf")) < self.dedupe_s:
            return False
        self._last[key] = now
        log.warning("alert", kind=kind, message=message, **fields)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"at": now, "kind": kind, "message": message, **fields}, default=str) + "\n")
        return True


def read_alerts(directory: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The newest alerts last."""
    return read_jsonl(Path(directory) / ALERTS_FILE, limit)


def read_jsonl(path: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` records of a JSON-lines file; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def read_after(directory: Path, offset: int | None) -> tuple[list[dict[str, Any]], int]:
    """Alerts written after byte ``offset``, and the offset past them, for a reader that pushes
    each alert once. ``None`` (the reader's first start) gives none and the file's end: history
    is for listing, not for a flood of pushes. A file shorter than the offset was replaced and is
    read from the top; a line still being written waits for its newline; a bad line is skipped."""
    path = Path(directory) / ALERTS_FILE
    size = path.stat().st_size if path.exists() else 0
    if offset is None:
        return [], size
    offset = 0 if size < offset else offset
    if size == offset:
        return [], offset
    with path.open("rb") as fh:
        fh.seek(offset)
        chunk = fh.read(size - offset)
    end = chunk.rfind(b"\n") + 1
    alerts = []
    for line in chunk[:end].splitlines():
        try:
            alert = json.loads(line)
        except ValueError:
            log.warning("alert_bad_line", line=line[:200])
            continue
        if isinstance(alert, dict):
            alerts.append(alert)
    return alerts, offset + end
