"""Free text from an operator: a request to the agent, with a progress message that follows it.

One "working…" message, edited with the agent's current step at most once per
``progress_interval_s`` and only when the step changed (Telegram limits edits, and a chat
that flickers is unreadable), then edited into the final reply. A run that ends waiting for
approval also gets the approval message with its buttons.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from sorte import service
from sorte.errors import SorteError
from sorte.telegram.access import BotContext, Caller, _quiet, admit, clip, get_context, log, refuse_viewer, send
from sorte.telegram.approval import send_approval
from sorte.telegram.texts import esc, node_text, t


class Progress:
    """Keeps the latest step (the agent may report it from a worker thread) and edits the message."""

    def __init__(self, bot: Any, chat_id: int, message_id: int, lang: str, interval_s: float) -> None:
        self.bot, self.chat_id, self.message_id = bot, chat_id, message_id
        self.lang, self.interval_s = lang, interval_s
        self.step: str | None = None
        self.shown: str | None = None
        self.reading = ""  # the interpreter's restated reading, shown under the step

    def on_event(self, node: str, event: str, info: dict) -> None:
        if event == "enter":
            self.step = node  # a plain assignment: safe from any thread, read by the ticker below
        elif event == "reading" and info.get("action") == "edit":
            self.reading = str(info.get("text", ""))

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> bool:
        """Show the current step if it is not shown yet; steps passed in between are skipped."""
        step = self.step
        if step is None or step == self.shown:
            return False
        self.shown = step
        await _quiet(
            self.bot.edit_message_text(
                chat_id=self.chat_id,
                message_id=self.message_id,
                text=t(self.lang, "step", step=node_text(self.lang, step))
                + (f"\n{esc(self.reading)}" if self.reading else ""),
            )
        )
        return True

    async def finish(self, text: str) -> None:
        """The final reply replaces the progress message (a new message when it is too long to edit in)."""
        try:
            await self.bot.edit_message_text(chat_id=self.chat_id, message_id=self.message_id, text=clip(text))
        except BadRequest:
            await send(self.bot, self.chat_id, text)


async def free_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = get_context(context)
    message = update.effective_message
    if message is None or not message.text:
        return
    lang = ctx.language(update, message.text)
    caller = await admit(ctx, update, lang)
    if caller is None:
        return
    if not caller.operator:
        await send(update.get_bot(), caller.chat_id, refuse_viewer(ctx, caller, "ask", text=message.text[:200]))
        return
    await ask(ctx, update.get_bot(), caller, message.text)


async def ask(ctx: BotContext, bot: Any, caller: Caller, text: str) -> None:
    lang = caller.lang
    sent = await send(bot, caller.chat_id, t(lang, "working"))
    progress = Progress(bot, caller.chat_id, sent.message_id, lang, ctx.progress_interval_s)
    ticker = asyncio.create_task(progress.tick())
    try:
        view = await service.ask(ctx.settings, caller.principal, text, llm=ctx.llm, on_event=progress.on_event)
    except SorteError as exc:
        await progress.finish(t(lang, "failed", message=str(exc)))
        return
    except Exception as exc:  # the operator hears it failed; the log keeps the trace
        log.exception("telegram_ask_failed")
        await progress.finish(t(lang, "error", message=type(exc).__name__))
        return
    finally:
        ticker.cancel()
    reply_lang = view.language or lang
    if view.reply:
        final = esc(view.reply)
    elif view.status == "awaiting_approval":
        final = t(reply_lang, "awaiting", run_id=view.run_id)
    else:
        final = t(reply_lang, "no_reply", run_id=view.run_id, outcome=view.outcome or view.status)
    await progress.finish(final)
    if view.status == "done":
        ctx.tell(view.run_id, caller.chat_id)
    if view.status == "awaiting_approval":
        await send_approval(ctx, bot, caller.chat_id, view, reply_lang)
