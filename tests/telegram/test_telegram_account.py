"""A live account's reconciliation in /status, through the real python-telegram-bot client and
the local Bot API server: nothing on paper, the reconciled line, and a refusal with what differs
(escaped once: the bot sends HTML) and how to accept a deposit."""

from __future__ import annotations

import asyncio
import re

from fake_telegram_api import FakeTelegram
from telegram_harness import VIEWER, RunningBot, bot_settings

from sorte.config import Settings
from tests.account_state import DEPOSIT, reconciled

FOREIGN = "open order <manual-1> (buy 1.0 ETH/USDT) at the exchange is not in the ledger"


def test_status_shows_the_account_line_and_a_refusal(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> list[str]:
        async with RunningBot(live, fake) as bot:
            paper = await bot.ask(VIEWER, "/status")
            reconciled(live.data_dir, True)
            ok = await bot.ask(VIEWER, "/status")
            reconciled(live.data_dir, False, (DEPOSIT,), (FOREIGN,))
            refused = await bot.ask(VIEWER, "/status")
            reconciled(live.data_dir, False, others=(FOREIGN,))
            orders_only = await bot.ask(VIEWER, "/status")
            return [paper, ok, refused, orders_only]

    paper, ok, refused, orders_only = asyncio.run(scenario())
    assert "Account" not in paper
    assert re.search(r"Account: reconciled at epoch 3 3\d s ago, 2 open orders as the ledger says", ok)
    assert (
        "⛔ Account differs from the ledger, trading refused: open order &lt;manual-1&gt; (buy 1.0 ETH/USDT) at the "
        "exchange is not in the ledger; USDT balance is 11000 at the exchange, the ledger accounts for 10000"
    ) in refused
    assert "<code>sorte reconcile --accept</code>" in refused  # markup, not escaped text
    assert "trading refused" in orders_only and "reconcile --accept" not in orders_only  # an order is not accepted
