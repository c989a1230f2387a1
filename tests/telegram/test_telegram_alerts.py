"""The alert pusher: the real bot client sends to the local Bot API server; a fake clock drives
the rate limit and the de-duplication window so nothing depends on how fast the test runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from fake_telegram_api import FakeTelegram
from telegram_harness import OPERATOR, VIEWER, RunningBot, add_alert, bot_settings, wait_for

from commander.alerts import ALERTS_FILE
from commander.status import commander_dir
from sorte.agent import journal
from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.telegram import build_application
from sorte.telegram.alerts import AlertPusher
from sorte.telegram.state import STATE_FILE, BotState

SECOND_OPERATOR = 1004


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def pushing(
    settings: Settings, scenario: Callable[[AlertPusher], Awaitable[None]], clock: Clock | None = None
) -> None:
    """Run ``scenario(pusher)`` with a pusher whose bot talks to the local server."""
    app = build_application(settings)
    await app.initialize()
    try:
        await scenario(AlertPusher(app.bot_data["sorte"], app.bot, clock=clock or Clock()))
    finally:
        await app.shutdown()


def test_first_start_skips_history_and_operators_get_new_alerts(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    add_alert(live, "promoted", "old news")

    async def scenario() -> None:
        async with RunningBot(live, fake):
            await wait_for(lambda: (live.data_dir / STATE_FILE).exists(), "the offset to be saved")
            add_alert(live, "rollback", "deployment 3 rolled back: drawdown")
            await wait_for(lambda: fake.sent_to(OPERATOR), "the alert")

    asyncio.run(scenario())
    assert fake.sent_to(OPERATOR) == ["⚠️ <b>rollback</b>: deployment 3 rolled back: drawdown"]
    assert fake.sent_to(VIEWER) == [], "alerts go to operators' private chats when no alert chat is set"


def test_rate_limit_summarises_what_it_holds_back(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake, alerts_per_minute=2, alert_chats=[str(OPERATOR)])
    clock = Clock()

    async def scenario(pusher: AlertPusher) -> None:
        assert await pusher.poll_once() == 0  # sets the offset at the (missing) file's end
        for i in range(5):
            add_alert(live, "bar_gap", f"gap {i}")
        add_alert(live, "runtime_crash", "slot blue exited 1")
        assert await pusher.poll_once() == 2
        assert await pusher.poll_once() == 0, "nothing more inside the minute"
        clock.now += 61
        assert await pusher.poll_once() == 1, "one summary once the chat has room"
        assert await pusher.poll_once() == 0

    asyncio.run(pushing(live, scenario, clock))
    sent = fake.sent_to(OPERATOR)
    assert sent[:2] == ["⚠️ <b>bar_gap</b>: gap 0", "⚠️ <b>bar_gap</b>: gap 1"]
    assert sent[2] == "…and 4 more alerts (bar_gap ×3, runtime_crash) held back by the rate limit; /alerts shows them."
    assert len(sent) == 3


def test_duplicates_are_sent_once_per_window_and_muted_kinds_not_at_all(settings: Settings, fake: FakeTelegram) -> None:
    users = {str(OPERATOR): "operator", str(SECOND_OPERATOR): "operator", str(VIEWER): "viewer"}
    live = bot_settings(settings, fake, users=users, alert_dedupe_s=300)
    clock = Clock()

    async def scenario(pusher: AlertPusher) -> None:
        await pusher.poll_once()
        pusher.ctx.state.mute(SECOND_OPERATOR, "bar_gap")
        add_alert(live, "bar_gap", "no bar for 3 minutes")
        add_alert(live, "bar_gap", "no bar for 3 minutes")
        await pusher.poll_once()
        clock.now += 299
        add_alert(live, "bar_gap", "no bar for 3 minutes")
        await pusher.poll_once()
        clock.now += 2
        add_alert(live, "bar_gap", "no bar for 3 minutes")
        add_alert(live, "warm_lost", "green slot stopped")
        await pusher.poll_once()

    asyncio.run(pushing(live, scenario, clock))
    gap = "⚠️ <b>bar_gap</b>: no bar for 3 minutes"
    assert fake.sent_to(OPERATOR) == [gap, gap, "⚠️ <b>warm_lost</b>: green slot stopped"]
    assert fake.sent_to(SECOND_OPERATOR) == ["⚠️ <b>warm_lost</b>: green slot stopped"], "bar_gap is muted there"


def test_offset_survives_a_restart_and_half_lines_wait(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake, alert_dedupe_s=0)
    path = commander_dir(live.data_dir) / ALERTS_FILE

    async def first(pusher: AlertPusher) -> None:
        await pusher.poll_once()
        add_alert(live, "promoted", "deployment 1 active")
        assert await pusher.poll_once() == 1

    async def second(pusher: AlertPusher) -> None:
        assert await pusher.poll_once() == 1, "only what came while the bot was down"
        with path.open("a") as out:
            out.write(json.dumps({"at": 2, "kind": "rejected", "message": "deployment 3 rejected"})[:20])
        assert await pusher.poll_once() == 0, "a line without its newline is still being written"
        with path.open("a") as out:
            out.write(json.dumps({"at": 2, "kind": "rejected", "message": "deployment 3 rejected"})[20:] + "\n")
        assert await pusher.poll_once() == 1

    asyncio.run(pushing(live, first))
    saved = json.loads((live.data_dir / STATE_FILE).read_text())["alerts_offset"]
    assert saved == path.stat().st_size
    add_alert(live, "rollback", "deployment 1 rolled back")
    asyncio.run(pushing(live, second))
    assert fake.sent_to(OPERATOR) == [
        "⚠️ <b>promoted</b>: deployment 1 active",
        "⚠️ <b>rollback</b>: deployment 1 rolled back",
        "⚠️ <b>rejected</b>: deployment 3 rejected",
    ]
    assert BotState(live.data_dir).alerts_offset == path.stat().st_size


def test_alerts_use_the_chat_language_and_approval_needed_sends_buttons(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake, alerts_per_minute=1)
    run_id = "20261122-201500-0a0b0c"
    journal.save_view(
        live.data_dir,
        RunView(
            run_id=run_id,
            request="aumenta o stop loss do momentum para 3%",
            status="awaiting_approval",
            plan_summary="Raise momentum's stop loss to 3%",
            diff="-stop_loss = 0.02\n+stop_loss = 0.03\n",
            verdict_text="metric   base  cand\nsharpe   1.0   1.2",
        ),
    )
    BotState(live.data_dir).set_language(OPERATOR, "pt")

    async def scenario(pusher: AlertPusher) -> None:
        await pusher.poll_once()
        add_alert(live, "risk_limit", "drawdown 9% of 10%")
        add_alert(live, "approval_needed", f"run {run_id} waits", run_id=run_id)
        add_alert(live, "approval_needed", f"run {run_id} waits again", run_id=run_id)
        assert await pusher.poll_once() == 2, "the approval goes out past the rate limit, once per chat"

    asyncio.run(pushing(live, scenario))
    messages = [c.params for c in fake.of("sendMessage")]
    assert messages[0]["text"] == "⚠️ <b>risk_limit</b>: drawdown 9% of 10%"
    approval = messages[1]
    assert "Aprovação necessária" in approval["text"] and "Raise momentum" in approval["text"]
    assert "<pre>-stop_loss = 0.02\n+stop_loss = 0.03\n</pre>" in approval["text"]
    assert "sharpe   1.0   1.2" in approval["text"]
    keyboard = approval["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in keyboard] == [f"approve:{run_id}", f"reject:{run_id}"]
    assert [b["text"] for b in keyboard] == ["✅ Aprovar", "❌ Rejeitar"]
    assert len(messages) == 2, "the second approval_needed for the same run is not sent again"


def test_a_run_outcome_is_not_pushed_to_the_chat_that_already_saw_it(settings: Settings, fake: FakeTelegram) -> None:
    users = {str(OPERATOR): "operator", str(SECOND_OPERATOR): "operator"}
    live = bot_settings(settings, fake, users=users)
    run_id = "20261122-201500-0a0b0c"

    async def scenario(pusher: AlertPusher) -> None:
        await pusher.poll_once()
        pusher.ctx.tell(run_id, OPERATOR)  # the operator approved it by button: the edit said "merged"
        add_alert(live, "run_finished", f"run {run_id} merged: stop loss 3%", run_id=run_id)
        add_alert(live, "run_finished", "run 20261122-201500-ffffff merged: other", run_id="20261122-201500-ffffff")
        await pusher.poll_once()

    asyncio.run(pushing(live, scenario))
    assert fake.sent_to(OPERATOR) == ["⚠️ <b>run_finished</b>: run 20261122-201500-ffffff merged: other"]
    assert len(fake.sent_to(SECOND_OPERATOR)) == 2
