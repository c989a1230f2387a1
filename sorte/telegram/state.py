"""What the bot remembers across restarts, in ``<data_dir>/telegram/state.json``.

The alert file's byte offset (so a restart neither replays nor loses alerts), each chat's muted
alert kinds and last language, the strangers already told "no" (told once, audited always), and
where each approval message was sent (so a decision by command also removes the buttons).
Written whole to a temporary file and renamed: a crash mid-write leaves the old state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = Path("telegram") / "state.json"


class BotState:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / STATE_FILE
        self.data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # first start, or a file we cannot read: begin afresh rather than not at all
        if not isinstance(data, dict):
            data = {}
        for key in ("mutes", "languages", "approvals"):
            data.setdefault(key, {})
        data.setdefault("refused", [])
        data.setdefault("alerts_offset", None)
        return data

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    # -- languages ----------------------------------------------------------------------------
    def language(self, chat_id: int | str) -> str | None:
        return self.data["languages"].get(str(chat_id))

    def set_language(self, chat_id: int | str, lang: str) -> None:
        if self.data["languages"].get(str(chat_id)) != lang:
            self.data["languages"][str(chat_id)] = lang
            self.save()

    # -- strangers ------------------------------------------------------------------------------
    def first_refusal(self, user_id: int | str) -> bool:
        """True the first time ``user_id`` is refused (and remembers it)."""
        if str(user_id) in self.data["refused"]:
            return False
        self.data["refused"].append(str(user_id))
        self.save()
        return True

    # -- mutes ----------------------------------------------------------------------------------
    def mutes(self, chat_id: int | str) -> list[str]:
        return sorted(self.data["mutes"].get(str(chat_id), []))

    def mute(self, chat_id: int | str, kind: str) -> None:
        kinds = set(self.data["mutes"].get(str(chat_id), []))
        kinds.add(kind)
        self.data["mutes"][str(chat_id)] = sorted(kinds)
        self.save()

    def unmute(self, chat_id: int | str, kind: str) -> bool:
        kinds = set(self.data["mutes"].get(str(chat_id), []))
        if kind not in kinds:
            return False
        kinds.discard(kind)
        self.data["mutes"][str(chat_id)] = sorted(kinds)
        self.save()
        return True

    # -- the alert file's offset ----------------------------------------------------------------
    @property
    def alerts_offset(self) -> int | None:
        return self.data["alerts_offset"]

    @alerts_offset.setter
    def alerts_offset(self, offset: int) -> None:
        self.data["alerts_offset"] = offset
        self.save()

    # -- approval messages ------------------------------------------------------------------------
    def add_approval(self, run_id: str, chat_id: int, message_id: int) -> None:
        self.data["approvals"].setdefault(run_id, []).append([chat_id, message_id])
        self.save()

    def pop_approvals(self, run_id: str) -> list[tuple[int, int]]:
        found = self.data["approvals"].pop(run_id, [])
        if found:
            self.save()
        return [(int(c), int(m)) for c, m in found]

    def approvals(self, run_id: str) -> list[tuple[int, int]]:
        return [(int(c), int(m)) for c, m in self.data["approvals"].get(run_id, [])]
