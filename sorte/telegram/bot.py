"""Build the python-telegram-bot Application and run it inside someone else's event loop.

``sorte up`` owns the loop and the signals, so this never calls ``run_polling``: it
initialises, starts polling and the alert pusher, waits for the caller's ``stop`` event, then
shuts down in order (updater, application, shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.telegram import commands as c
from sorte.telegram.access import BotContext, guarded, log
from sorte.telegram.alerts import AlertPusher
from sorte.telegram.approval import on_button
from sorte.telegram.ask import free_text
from sorte.telegram.state import BotState

# (command, handler, waits on the agent or the commander, English and Portuguese descriptions)
COMMANDS: list[tuple[str, Any, bool, str, str]] = [
    ("start", c.start, False, "who you are to this bot", "quem é você para este bot"),
    ("help", c.help_, False, "what the bot understands", "o que o bot entende"),
    ("status", c.status, False, "overview: health, deployment, profit", "visão geral: saúde, implantação, lucro"),
    ("positions", c.positions, False, "open positions", "posições abertas"),
    ("trades", c.trades, False, "latest fills: /trades [n]", "últimas execuções: /trades [n]"),
    ("profit", c.profit, False, "results so far", "resultados até agora"),
    ("balance", c.balance, False, "equity and cash", "património e caixa"),
    ("strategies", c.strategies, False, "strategies and parameters", "estratégias e parâmetros"),
    ("runs", c.runs, False, "the agent's runs", "execuções do agente"),
    ("run", c.run, False, "one run: /run ID", "uma execução: /run ID"),
    ("diff", c.diff, False, "a run's change: /diff ID", "a alteração de uma execução: /diff ID"),
    ("approve", c.approve, True, "approve a change: /approve ID", "aprovar uma alteração: /approve ID"),
    ("reject", c.reject, True, "reject a change: /reject ID", "rejeitar uma alteração: /reject ID"),
    ("deploys", c.deploys, False, "deployments", "implantações"),
    ("rollback", c.rollback, True, "back to a deployment: /rollback [ID] [reason]", "voltar: /rollback [ID] [motivo]"),
    ("lessons", c.lessons, False, "what the agent learnt: /lessons [words]", "o que o agente aprendeu"),
    ("pause", c.pause, False, "stop new entries", "parar novas entradas"),
    ("stopentry", c.pause, False, "stop new entries (as /pause)", "parar novas entradas (como /pause)"),
    ("resume", c.resume, False, "allow new entries again", "permitir novas entradas"),
    ("startentry", c.resume, False, "allow new entries (as /resume)", "permitir novas entradas (como /resume)"),
    ("logs", c.logs, False, "last log lines: /logs [n]", "últimas linhas do log: /logs [n]"),
    ("alerts", c.alerts, False, "latest alerts: /alerts [n]", "últimos alertas: /alerts [n]"),
    ("mute", c.mute, False, "mute an alert kind here: /mute kind|list", "silenciar alertas: /mute tipo|list"),
    ("unmute", c.unmute, False, "unmute an alert kind: /unmute kind", "reativar alertas: /unmute tipo"),
    ("reload_config", c.reload_config, False, "re-read users, chats, language", "reler utilizadores, chats, idioma"),
]


def build_application(
    settings: Settings, *, llm: Any = None, reload: Callable[[], Settings] | None = None
) -> Application:
    """The bot with every handler registered; ``reload`` re-reads the settings for /reload_config
    (default: the same sources the settings came from)."""
    tg = settings.telegram
    if not tg.configured:
        raise ConfigError("telegram.token is not set (SORTE_TELEGRAM__TOKEN): the bot cannot start")
    app = (
        ApplicationBuilder()
        .token(tg.token.get_secret_value())  # type: ignore[union-attr]
        .base_url(tg.base_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .build()
    )
    app.bot_data["sorte"] = BotContext(settings=settings, state=BotState(settings.data_dir), llm=llm, reload=reload)
    for name, handler, slow, _, _ in COMMANDS:
        # block=False for what waits on the agent or the commander: the bot keeps answering meanwhile
        app.add_handler(CommandHandler(name, guarded(handler), block=not slow))
    app.add_handler(CallbackQueryHandler(on_button, block=False))
    # free text only in private chats: in a group, people talk to each other, not to the agent
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, free_text, block=False))
    app.add_error_handler(_on_error)
    return app


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("telegram_update_failed", error=repr(context.error), exc_info=context.error)


async def register_commands(app: Application) -> None:
    """The command menu, in English and for Portuguese-speaking users in Portuguese."""
    await app.bot.set_my_commands([BotCommand(name, en) for name, _, _, en, _ in COMMANDS])
    await app.bot.set_my_commands([BotCommand(name, pt) for name, _, _, _, pt in COMMANDS], language_code="pt")


async def _initialize(app: Application, stop: asyncio.Event, retry_s: float = 15.0) -> bool:
    """getMe until it answers: Telegram being unreachable at start must not end the bot (nor what
    runs beside it); a rejected token does. False when ``stop`` came first."""
    while not stop.is_set():
        try:
            await app.initialize()
            return True
        except InvalidToken:
            raise
        except NetworkError as exc:
            log.warning("telegram_unreachable", error=str(exc), retry_s=retry_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=retry_s)
    return False


async def run_bot(
    settings: Settings,
    stop: asyncio.Event,
    *,
    llm: Any = None,
    reload: Callable[[], Settings] | None = None,
    alert_interval_s: float = 1.0,
) -> None:
    """Poll for updates and push alerts until ``stop`` is set, then shut down cleanly."""
    app = build_application(settings, llm=llm, reload=reload)
    ctx: BotContext = app.bot_data["sorte"]
    if not await _initialize(app, stop):
        return
    pusher_task: asyncio.Task | None = None
    try:
        try:
            await register_commands(app)
        except TelegramError:  # the menu is a convenience: the bot works without it
            log.warning("telegram_commands_not_registered", exc_info=True)
        await app.start()
        # pending updates are kept: a message sent while the bot was down still gets its answer
        await app.updater.start_polling(  # type: ignore[union-attr]
            timeout=int(settings.telegram.poll_timeout_s),
            drop_pending_updates=False,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
        )
        pusher = AlertPusher(ctx, app.bot)
        pusher_task = asyncio.create_task(pusher.run(stop, interval_s=alert_interval_s))
        log.info("telegram_bot_started", users=len(settings.telegram.users), chats=len(settings.telegram.chats))
        await stop.wait()
    finally:
        if pusher_task is not None:
            pusher_task.cancel()
            await asyncio.gather(pusher_task, return_exceptions=True)
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        log.info("telegram_bot_stopped")
