"""Who is writing, in which language, and may they: the gate every handler passes first.

A user's role comes from ``telegram.users`` (their own) or ``telegram.chats`` (the chat's).
Anyone else gets one refusal, ever (remembered in the state file, so a stranger cannot make
the bot answer them in a loop), and an audit line per attempt; nothing else, no data.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from sorte.config import Settings
from sorte.errors import SorteError
from sorte.interpret.replies import language as guess_language
from sorte.service import Forbidden, NotFound, Principal, audit, audit_scope
from sorte.telegram.state import BotState
from sorte.telegram.texts import action_text, t

log = structlog.get_logger("sorte.telegram")
MAX_TEXT = 4000  # Telegram's limit is 4096; room for a closing tag and an ellipsis
LANGUAGE_SAMPLE = 1000  # characters enough to tell Portuguese from English; a forged huge text costs no more


class BadArgument(SorteError):
    """A command argument the user has to fix; the message is already in their language."""


@dataclass
class BotContext:
    """What the handlers share: live settings (replaced by /reload_config), the state file, the LLM."""

    settings: Settings
    state: BotState
    llm: Any = None
    reload: Callable[[], Settings] | None = None
    deciding: set[str] = field(default_factory=set)  # runs with a decision in flight: a second press waits
    sending: set[tuple[str, int]] = field(default_factory=set)  # approval messages on their way (run, chat)
    told: dict[str, set[int]] = field(default_factory=dict)  # run -> chats already shown its outcome
    progress_interval_s: float = 2.0
    started_at: float = field(default_factory=time.time)

    def tell(self, run_id: str, chat_id: int) -> None:
        """Remember that ``chat_id`` saw how ``run_id`` ended, so the run's own alert skips that chat."""
        if len(self.told) > 500:  # a long-running bot: the oldest runs' alerts are long gone
            self.told.pop(next(iter(self.told)))
        self.told.setdefault(run_id, set()).add(chat_id)

    def language(self, update: Update, text: str | None = None) -> str:
        """The language to answer in: of ``text`` when it has a few words, else the chat's last one."""
        chat = update.effective_chat
        text = text[:LANGUAGE_SAMPLE] if text else text
        if text and len(text.split()) >= 3:
            lang = guess_language(text)
            if chat is not None:
                self.state.set_language(chat.id, lang)
            return lang
        remembered = self.state.language(chat.id) if chat is not None else None
        return remembered or self.settings.telegram.language


@dataclass
class Caller:
    """The admitted sender of an update."""

    principal: Principal
    lang: str
    chat_id: int

    @property
    def operator(self) -> bool:
        return self.principal.role == "operator"


def get_context(context: ContextTypes.DEFAULT_TYPE) -> BotContext:
    return context.application.bot_data["sorte"]


async def admit(ctx: BotContext, update: Update, lang: str) -> Caller | None:
    """The caller, or None after refusing a stranger (the first time with a message, always audited)."""
    user, chat = update.effective_user, update.effective_chat
    user_id = user.id if user is not None else None
    chat_id = chat.id if chat is not None else None
    role = ctx.settings.telegram.role_of(user_id, chat_id)
    if role is None:
        text = update.effective_message.text if update.effective_message is not None else None
        audit(
            ctx.settings.data_dir,
            f"telegram:{user_id}",
            "telegram",
            False,
            reason="unknown user",
            chat=chat_id,
            text=(text or "")[:100],
        )
        first = user_id is not None and ctx.state.first_refusal(user_id)
        refusal = t(lang, "refused", user_id=str(user_id))
        if update.callback_query is not None:  # a press answers the presser alone, not the chat
            await _quiet(update.callback_query.answer(refusal if first else None, show_alert=first))
        elif first and chat_id is not None:
            await send(update.get_bot(), chat_id, refusal)
        return None
    name = (user.username or user.full_name) if user is not None else ""
    principal = Principal(channel="telegram", id=str(user_id if user_id is not None else chat_id), role=role, name=name)
    return Caller(principal=principal, lang=lang, chat_id=int(chat_id if chat_id is not None else user_id or 0))


def refuse_viewer(ctx: BotContext, caller: Caller, action: str, **fields: Any) -> str:
    """Audit a viewer's attempt at an operator action the service layer does not check itself."""
    audit(ctx.settings.data_dir, caller.principal.sender, action, False, reason="not an operator", **fields)
    return t(caller.lang, "operator_only", action=action_text(caller.lang, action))


Handler = Callable[[BotContext, Update, ContextTypes.DEFAULT_TYPE, Caller], Awaitable[None]]


def guarded(
    fn: Handler, *, language_from_args: bool = True
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """Wrap a command: admit the caller, then turn the service's errors into one clear reply."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ctx = get_context(context)
        args = " ".join(context.args or []) if language_from_args else None
        lang = ctx.language(update, args)
        caller = await admit(ctx, update, lang)
        if caller is None:
            return
        command = fn.__name__.rstrip("_")
        try:
            with audit_scope() as audited:
                try:
                    await fn(ctx, update, context, caller)
                except SorteError as exc:  # a refusal: audited here unless the service layer already did
                    if not audited:
                        audit_refusal(ctx, caller, command, exc, args=context.args)
                    raise
        except BadArgument as exc:
            await send(update.get_bot(), caller.chat_id, str(exc))
        except Forbidden as exc:
            action = str(exc).split(" ", 1)[0]
            await send(update.get_bot(), caller.chat_id, t(lang, "operator_only", action=action_text(lang, action)))
        except NotFound as exc:
            await send(update.get_bot(), caller.chat_id, t(lang, "not_found", message=str(exc)))
        except SorteError as exc:
            await send(update.get_bot(), caller.chat_id, t(lang, "failed", message=str(exc)))
        except TelegramError:
            log.exception("telegram_send_failed")
        except Exception as exc:  # the user hears something went wrong; the log keeps the trace
            log.exception("telegram_handler_failed", handler=fn.__name__)
            await _quiet(send(update.get_bot(), caller.chat_id, t(lang, "error", message=type(exc).__name__)))

    handler.__name__ = fn.__name__
    return handler


def audit_refusal(ctx: BotContext, caller: Caller, action: str, exc: Exception, **fields: Any) -> None:
    """One audit line for a command the bot refused itself (a bad argument, an unknown run)."""
    args = fields.pop("args", None)
    if args:
        fields["args"] = " ".join(args)[:100]
    reason = f"{type(exc).__name__}: {exc}"[:300]
    audit(ctx.settings.data_dir, caller.principal.sender, action, False, reason=reason, **fields)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def send(bot: Any, chat_id: int, text: str, **kwargs: Any) -> Any:
    """sendMessage in HTML, clipped to Telegram's size limit."""
    return await bot.send_message(chat_id=chat_id, text=clip(text), **kwargs)


async def _quiet(coro: Awaitable[Any]) -> None:
    try:
        await coro
    except TelegramError:
        log.warning("telegram_call_failed", exc_info=True)
