"""The market feed in /status, through the real python-telegram-bot client and the local Bot API
server: none before the commander wrote its health, then its figures in the chat's language, the
stale symbol, the ages grown since the snapshot, and an old snapshot said to be old."""

from __future__ import annotations

import asyncio

from fake_telegram_api import FakeTelegram
from telegram_harness import VIEWER, RunningBot, bot_settings

from sorte.config import Settings
from tests.feed_health import commander_lock, write_feed


def test_status_shows_the_feed_in_the_chats_language(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> list[str]:
        async with RunningBot(live, fake) as bot:
            before = await bot.ask(VIEWER, "/status")
            with commander_lock(live.data_dir):
                write_feed(live.data_dir, ago_s=7200)  # every age has grown by two hours since
                english = await bot.ask(VIEWER, "/status")
                write_feed(live.data_dir, stale=False)
                current = await bot.ask(VIEWER, "/status")
            assert "Só operadores" in await bot.ask(VIEWER, "mostra o estado da estratégia por favor")
            portuguese = await bot.ask(VIEWER, "/status")  # the chat's last language
            return [before, english, current, portuguese]

    before, english, current, portuguese = asyncio.run(scenario())
    assert "Sorte" in before and "Feed" not in before, "no feed file: no feed line"
    assert (
        "Feed: binance 1m websocket, 2 symbols (BTC/USDT ETH/USDT), last bar 2.2 h ago, lag 1.5 s, 2 reconnects, "
        "17 backfilled and 240 streamed candles, clock offset -0.25 s" in english
    )
    assert "⚠ Stale: ETH/USDT; new entries blocked" in english
    assert "UTC, not updated for 2.0 h)" in english  # the commander runs but wrote nothing for two hours
    assert "last bar 11 min ago" in current and "Stale" not in current and "(as of" not in current
    assert (
        "Dados de mercado: binance 1m websocket, 2 símbolos (BTC/USDT ETH/USDT), última barra há 11 min" in portuguese
    )
    assert "UTC, comandante parado)" in portuguese  # the lock is released: the snapshot is the last one


def test_a_closed_market_in_status(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    write_feed(live.data_dir, stale=False, source="b3", mode="polling", opens_at=1_797_253_200.0)

    async def scenario() -> tuple[str, str]:
        async with RunningBot(live, fake) as bot:
            with commander_lock(live.data_dir):
                english = await bot.ask(VIEWER, "/status")
                await bot.ask(VIEWER, "mostra o estado da estratégia por favor")
                return english, await bot.ask(VIEWER, "/status")

    english, portuguese = asyncio.run(scenario())
    assert "Market closed (no bars are due), opens 2026-12-14 13:00 UTC" in english
    assert "Mercado fechado (sem barras até abrir), abre às 2026-12-14 13:00 UTC" in portuguese


def test_the_replay_feed_in_status(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    write_feed(live.data_dir, source="replay", mode="replay", stale=False)

    async def scenario() -> str:
        async with RunningBot(live, fake) as bot:
            with commander_lock(live.data_dir):
                return await bot.ask(VIEWER, "/status")

    reply = asyncio.run(scenario())
    assert "Feed: replay 1m, 2 symbols (BTC/USDT ETH/USDT), last bar " in reply and "(as of" not in reply
