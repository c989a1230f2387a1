"""The alert pusher: tails ``<commander dir>/alerts.jsonl`` and sends new alerts to the alert chats.

The file is read from a byte offset kept in the state file, so a restart neither replays old
alerts nor skips the ones written while the bot was down; on the very first start the offset is
the file's end (history is for /alerts, not for a flood of pushes). Per chat: muted kinds are
skipped, the same kind and message is sent once per ``alert_dedupe_s``, and at most
``alerts_per_minute`` go out; the rest are counted and summarised in one message as soon as the
chat has room again, never dropped silently. ``approval_needed`` sends the approval message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from telegram.error import TelegramError

from sorte import service
from sorte.errors import SorteError
from sorte.service import AlertView
from sorte.telegram.access import BotContext, clip, log, send
from sorte.telegram.approval import send_approval
from sorte.telegram.texts import t

WINDOW_S = 60.0
OUTCOME_KINDS = ("run_finished", "verdict_failed")  # how an agent run ended


class AlertPusher:
    def __init__(self, ctx: BotContext, bot: Any, clock: Callable[[], float] = time.time) -> None:
        self.ctx, self.bot, self.clock = ctx, bot, clock
        self.sent: dict[int, deque[float]] = {}
        self.seen: dict[tuple[int, str, str], float] = {}  # (chat, kind, message) -> when last sent or held
        self.held: dict[int, Counter[str]] = {}  # alerts over the rate limit, by kind, per chat
        self._new_offset: int | None = None  # where the alert log is read up to, once this batch is sent

    def targets(self) -> list[int]:
        tg = self.ctx.settings.telegram
        chats = tg.alert_chats or [user for user, role in tg.users.items() if role == "operator"]
        out = []
        for chat in chats:
            try:
                out.append(int(chat))
            except ValueError:
                log.warning("telegram_bad_alert_chat", chat=chat)
        return out

    def read_new(self) -> list[AlertView]:
        """What the commander alerted since the saved offset; the offset moves past it once sent."""
        state = self.ctx.state
        alerts, offset = service.alerts_after(self.ctx.settings, state.alerts_offset)
        if alerts:
            self._new_offset = offset
        elif offset != state.alerts_offset:  # first start, a replaced log, or only bad lines
            state.alerts_offset = offset
        return alerts

    def _room(self, chat: int, now: float) -> bool:
        times = self.sent.setdefault(chat, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        return len(times) < self.ctx.settings.telegram.alerts_per_minute

    async def _send(self, chat: int, text: str) -> None:
        self.sent.setdefault(chat, deque()).append(self.clock())
        try:
            await send(self.bot, chat, text)
        except TelegramError:
            log.warning("telegram_alert_not_sent", chat=chat, exc_info=True)

    async def flush_held(self) -> int:
        """One summary per chat whose held-back alerts can go out now."""
        count = 0
        now = self.clock()
        for chat, kinds in list(self.held.items()):
            if not kinds or not self._room(chat, now):
                continue
            lang = self.ctx.state.language(chat) or self.ctx.settings.telegram.language
            described = ", ".join(f"{kind} ×{n}" if n > 1 else kind for kind, n in kinds.most_common())
            del self.held[chat]
            await self._send(chat, t(lang, "more_alerts", n=sum(kinds.values()), kinds=described))
            count += 1
        return count

    async def poll_once(self) -> int:
        """Read what is new and push it; returns the number of messages sent."""
        self._new_offset = None
        count = await self.flush_held()
        alerts = self.read_new()
        tg = self.ctx.settings.telegram
        for alert in alerts:
            kind, message = alert.kind, alert.message
            for chat in self.targets():
                if kind in self.ctx.state.mutes(chat):
                    continue
                if kind in OUTCOME_KINDS and chat in self.ctx.told.get(str(alert.fields.get("run_id")), ()):
                    continue  # the chat saw the outcome already (the reply, or the edited approval)
                now = self.clock()
                key = (chat, kind, message)
                if now - self.seen.get(key, float("-inf")) < tg.alert_dedupe_s:
                    continue
                self.seen[key] = now
                lang = self.ctx.state.language(chat) or tg.language
                if kind == "approval_needed" and alert.fields.get("run_id"):
                    # a request waiting for a human goes out regardless of the rate limit
                    count += await self._approval(chat, str(alert.fields["run_id"]), lang, message)
                    continue
                if not self._room(chat, now):
                    self.held.setdefault(chat, Counter())[kind] += 1
                    continue
                await self._send(chat, t(lang, "alert", kind=kind, message=clip(message, 1500)))
                count += 1
        if self._new_offset is not None:  # after sending: a crash mid-batch repeats rather than loses
            self.ctx.state.alerts_offset = self._new_offset
        return count

    async def _approval(self, chat: int, run_id: str, lang: str, message: str) -> int:
        try:
            view = service.run(self.ctx.settings, run_id)
        except SorteError:
            await self._send(chat, t(lang, "alert", kind="approval_needed", message=message))
            return 1
        if view.status != "awaiting_approval":
            return 0  # decided before the alert got here
        try:
            sent = await send_approval(self.ctx, self.bot, chat, view, lang)
        except TelegramError:
            log.warning("telegram_approval_not_sent", chat=chat, run_id=run_id, exc_info=True)
            return 0
        if sent:
            self.sent.setdefault(chat, deque()).append(self.clock())
        return int(sent)

    async def run(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        """Poll until ``stop`` is set; a failure is logged and the next poll tries again."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # the pusher must outlive a bad line or a full disk
                log.exception("telegram_alert_pusher_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
