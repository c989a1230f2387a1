"""Runtime control that can change while the runtime runs: batch interval and pause.

The runtime re-reads a small JSON file (``<data_dir>/control.json``) between batches when
its modification time changes; ``sorte control`` writes it. No restart is needed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from sorte.errors import ConfigError

log = structlog.get_logger("sorte.control")
MAX_INTERVAL_S = 3600.0


@dataclass
class RuntimeControl:
    batch_interval_s: float = 0.0
    paused: bool = False  # stop new entries; exits and stops keep working
    file: Path | None = None
    _stamp: tuple[int, int, int] = (-1, -1, -1)

    def refresh(self) -> None:
        if self.file is None:
            return
        try:
            st = self.file.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)  # replaced atomically: a new inode
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = json.loads(self.file.read_text())
            interval = data.get("batch_interval_s", self.batch_interval_s)
            check_interval(interval)
        except (ValueError, ConfigError, AttributeError) as exc:
            log.warning("control_file_ignored", file=str(self.file), error=str(exc))
            return
        if interval != self.batch_interval_s or bool(data.get("paused", self.paused)) != self.paused:
            log.info("control_changed", batch_interval_s=interval, paused=data.get("paused", self.paused))
        self.batch_interval_s = float(interval)
        self.paused = bool(data.get("paused", self.paused))


def check_interval(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"batch interval must be a number of seconds, got {value!r}")
    if not 0 <= value <= MAX_INTERVAL_S:
        raise ConfigError(f"batch interval must be between 0 and {MAX_INTERVAL_S:g} s, got {value}")
    return float(value)


def read_control(path: Path) -> dict:
    """The control file's content; {} when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_control(path: Path, interval: float | None = None, paused: bool | None = None) -> dict:
    """Update the control file atomically and return its new content."""
    data = read_control(path)
    if interval is not None:
        data["batch_interval_s"] = check_interval(interval)
    if paused is not None:
        data["paused"] = paused
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return data
