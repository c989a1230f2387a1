"""The bot under test: the real python-telegram-bot Application, run by ``run_bot`` against the
local Bot API server, plus helpers to wait for what it sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fake_telegram_api import FakeTelegram

from commander.alerts import ALERTS_FILE
from commander.status import commander_dir
from sorte.config import Settings, TelegramSettings
from sorte.telegram import run_bot

OPERATOR, VIEWER, STRANGER, GROUP = 1001, 1002, 1999, -5005
WAIT_S = 30.0  # a ceiling for a failure to show, not a timing expectation


def bot_settings(settings: Settings, fake: FakeTelegram, **telegram: Any) -> Settings:
    options: dict[str, Any] = {
        "token": fake.token,
        "base_url": fake.base_url,
        "users": {str(OPERATOR): "operator", str(VIEWER): "viewer"},
        "chats": {str(GROUP): "viewer"},
        "poll_timeout_s": 1,
    }
    options.update(telegram)
    return settings.model_copy(update={"telegram": TelegramSettings(**options)})


async def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class RunningBot:
    """``async with RunningBot(settings, fake) as bot``: run_bot in a task until the block ends."""

    def __init__(self, settings: Settings, fake: FakeTelegram, *, llm: Any = None, reload: Any = None) -> None:
        self.settings, self.fake, self.llm, self.reload = settings, fake, llm, reload
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> RunningBot:
        polls = len(self.fake.of("getUpdates"))
        self.task = asyncio.create_task(
            run_bot(self.settings, self.stop, llm=self.llm, reload=self.reload, alert_interval_s=0.05)
        )
        await wait_for(lambda: len(self.fake.of("getUpdates")) > polls or self.task.done(), "polling to start")
        if self.task.done():
            self.task.result()  # raises what went wrong
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT_S)

    async def said(self, chat_id: int, count: int) -> list[str]:
        """Wait until ``chat_id`` has received ``count`` messages; returns their texts."""
        await wait_for(lambda: len(self.fake.sent_to(chat_id)) >= count, f"{count} messages to {chat_id}")
        return self.fake.sent_to(chat_id)

    async def ask(self, user_id: int, text: str, *, chat_id: int | None = None) -> str:
        """Send ``text`` and return the next message the chat receives."""
        chat = chat_id if chat_id is not None else user_id
        before = len(self.fake.sent_to(chat))
        self.fake.text(user_id, text, chat_id=chat_id)
        return (await self.said(chat, before + 1))[before]

    async def handled(self) -> None:
        """Wait until every queued update was fetched and a later poll confirmed it."""
        await wait_for(lambda: self.fake.pending() == 0, "the updates to be consumed")


def add_alert(settings: Settings, kind: str, message: str, **fields: Any) -> None:
    path = commander_dir(settings.data_dir) / ALERTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"at": 1.0, "kind": kind, "message": message, **fields}) + "\n")


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    path = Path(settings.data_dir) / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
