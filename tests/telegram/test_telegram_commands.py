"""The bot's commands through the real python-telegram-bot client and a local Bot API server:
who may do what, bad arguments, languages, the control file, documents, settings reload."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fake_telegram_api import FakeTelegram
from telegram_harness import GROUP, OPERATOR, STRANGER, VIEWER, RunningBot, audit_lines, bot_settings, wait_for

from sorte.agent import journal
from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.runtime.control import read_control
from sorte.telegram.state import STATE_FILE

RUN_ID = "20261122-201500-a1b2c3"


def control(settings: Settings) -> dict:
    return read_control(settings.data_dir / "control.json")


def test_commands_are_registered_and_help_follows_the_role(settings: Settings, fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with RunningBot(bot_settings(settings, fake), fake) as bot:
            assert "operator" in await bot.ask(OPERATOR, "/start")
            assert "viewer" in await bot.ask(VIEWER, "/start")
            operator_help = await bot.ask(OPERATOR, "/help")
            viewer_help = await bot.ask(VIEWER, "/help")
        assert "/approve" in operator_help and "/rollback" in operator_help
        assert "/status" in viewer_help and "/approve" not in viewer_help

    asyncio.run(scenario())
    menus = {c.params.get("language_code", ""): c.params["commands"] for c in fake.of("setMyCommands")}
    assert set(menus) == {"", "pt"}
    names = [c["command"] for c in menus[""]]
    for name in ("status", "approve", "reject", "rollback", "pause", "stopentry", "mute", "unmute", "reload_config"):
        assert name in names
    assert "parar novas entradas" in {c["description"] for c in menus["pt"]}
    assert fake.of("deleteWebhook"), "polling starts by making sure no webhook is set"
    assert all(c.params.get("parse_mode") == "HTML" for c in fake.of("sendMessage"))


def test_a_stranger_is_refused_once_and_every_attempt_is_audited(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    journal.save_view(live.data_dir, RunView(run_id=RUN_ID, request="secret plan", status="awaiting_approval"))

    async def scenario() -> None:
        async with RunningBot(live, fake) as bot:
            refusal = await bot.ask(STRANGER, "/status")
            fake.text(STRANGER, f"/run {RUN_ID}")
            fake.text(STRANGER, "raise momentum's stop loss to 3%")
            await bot.handled()
            await wait_for(lambda: len(audit_lines(live)) >= 3, "three audit lines")
        async with RunningBot(live, fake) as bot:  # the refusal is remembered across a restart
            fake.text(STRANGER, "/help")
            await bot.handled()
            await wait_for(lambda: len(audit_lines(live)) >= 4, "the fourth audit line")
            assert await bot.ask(OPERATOR, "/start")  # the bot still answers others
        assert "private" in refusal and str(STRANGER) in refusal

    asyncio.run(scenario())
    assert fake.sent_to(STRANGER) == [fake.sent_to(STRANGER)[0]], "one refusal, ever"
    lines = [a for a in audit_lines(live) if a["who"] == f"telegram:{STRANGER}"]
    assert len(lines) == 4 and not any(a["ok"] for a in lines)
    assert {a["reason"] for a in lines} == {"unknown user"}
    state = json.loads((live.data_dir / STATE_FILE).read_text())
    assert str(STRANGER) in state["refused"]
    assert all("secret plan" not in text for text in fake.sent_to(STRANGER))


def test_viewers_read_but_cannot_act(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> None:
        async with RunningBot(live, fake) as bot:
            assert "Sorte" in await bot.ask(VIEWER, "/status")
            assert "Only operators" in await bot.ask(VIEWER, "/pause")
            assert "Only operators" in await bot.ask(VIEWER, f"/approve {RUN_ID}")
            assert "Only operators" in await bot.ask(VIEWER, "/rollback 1 because")
            assert "Only operators" in await bot.ask(VIEWER, "raise the stop loss of momentum to 3%")
            assert "Only operators" in await bot.ask(VIEWER, "/reload_config")
            # a group listed as viewer: anyone in it reads, nobody in it acts
            assert "Sorte" in await bot.ask(STRANGER, "/status", chat_id=GROUP)
            assert "Only operators" in await bot.ask(STRANGER, "/resume", chat_id=GROUP)

    asyncio.run(scenario())
    assert control(live) == {}, "nothing was paused"
    refused = {a["action"] for a in audit_lines(live) if not a["ok"]}
    assert {"pause", "approve", "rollback", "ask", "reload_config", "resume"} <= refused
    assert all(a["who"] in (f"telegram:{VIEWER}", f"telegram:{STRANGER}") for a in audit_lines(live))


def test_operator_pauses_and_resumes_through_the_control_file(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> None:
        async with RunningBot(live, fake) as bot:
            assert "New entries stopped" in await bot.ask(OPERATOR, "/pause")
            assert control(live)["paused"] is True
            assert "paused" in await bot.ask(OPERATOR, "/status")
            assert "allowed again" in await bot.ask(OPERATOR, "/resume")
            assert control(live)["paused"] is False
            await bot.ask(OPERATOR, "/stopentry")  # freqtrade's name for the same thing
            assert control(live)["paused"] is True
            nothing = await bot.ask(OPERATOR, "/rollback 2 drawdown too deep")
            assert nothing == "That did not work: nothing is active: nothing to roll back"

    asyncio.run(scenario())
    done = [(a["action"], a["ok"]) for a in audit_lines(live)]
    assert done == [("pause", True), ("resume", True), ("pause", True), ("rollback", False)]


def test_bad_arguments_get_one_clear_message(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> list[str]:
        async with RunningBot(live, fake) as bot:
            return [
                await bot.ask(OPERATOR, "/trades lots"),
                await bot.ask(OPERATOR, "/logs 0"),
                await bot.ask(OPERATOR, "/run ../../etc/passwd"),
                await bot.ask(OPERATOR, f"/run {RUN_ID}"),
                await bot.ask(OPERATOR, "/diff"),
                await bot.ask(OPERATOR, f"/approve {RUN_ID}"),
                await bot.ask(OPERATOR, "/rollback -3 oops"),
                await bot.ask(OPERATOR, "/unmute Bar-Gap!"),
            ]

    replies = asyncio.run(scenario())
    assert "must be a whole number" in replies[0] and "lots" in replies[0]
    assert "must be a whole number" in replies[1]
    assert "is not a run id" in replies[2]
    assert replies[3].startswith("Not found") and RUN_ID in replies[3]
    assert replies[4].startswith("Usage: /diff ID")
    assert replies[5].startswith("Not found")
    assert "must be a whole number" in replies[6]
    assert replies[7].startswith("Usage: /unmute kind")
    assert len(fake.of("sendMessage")) == len(replies), "one message per bad command, no more"
    assert control(live) == {}


def test_replies_follow_the_language_of_the_chat(settings: Settings, fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with RunningBot(bot_settings(settings, fake), fake) as bot:
            refusal = await bot.ask(VIEWER, "mostra o estado da estratégia por favor")
            assert "Só operadores" in refusal
            assert "Comandante" in await bot.ask(VIEWER, "/status")  # no words: the chat's last language
            assert "Commander" in await bot.ask(OPERATOR, "/status")  # another chat keeps the default
            assert "Uso: /run ID" in await bot.ask(VIEWER, "/run")
            assert "Only operators" in await bot.ask(VIEWER, "show me the state of the strategy")
            assert "Commander" in await bot.ask(VIEWER, "/status")
        async with RunningBot(bot_settings(settings, fake, language="pt"), fake) as bot:
            assert "Comandante" in await bot.ask(OPERATOR, "/status")  # the configured default
            assert "Commander" in await bot.ask(VIEWER, "/status")  # remembered across the restart

    asyncio.run(scenario())


def test_reading_commands_render_the_service_views(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    journal.save_view(
        live.data_dir,
        RunView(run_id=RUN_ID, request="raise <stop> to 3%", status="done", outcome="merged", reply="Done."),
    )
    log = live.data_dir / "logs" / "sorte.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"event": f"step {i}", "html": "<b>"}) + "\n" for i in range(40)))

    async def scenario() -> dict[str, str]:
        async with RunningBot(live, fake) as bot:
            return {
                name: await bot.ask(VIEWER, f"/{name}")
                for name in ("positions", "trades", "profit", "balance", "runs", "deploys", "strategies", "alerts")
            } | {"run": await bot.ask(VIEWER, f"/run {RUN_ID}"), "logs": await bot.ask(VIEWER, "/logs 3")}

    out = asyncio.run(scenario())
    assert out["positions"] == "No open positions."
    assert out["trades"] == "No fills yet."
    assert out["profit"] == out["balance"] == "No trading yet."
    assert RUN_ID in out["runs"] and "done/merged" in out["runs"] and "&lt;stop&gt;" in out["runs"]
    assert out["deploys"] == "Nothing deployed yet."
    assert "momentum" in out["strategies"]
    assert out["alerts"] == "No alerts."
    assert "(merged)" in out["run"] and "raise &lt;stop&gt; to 3%" in out["run"]
    assert out["logs"].count("step") == 3 and "step 39" in out["logs"] and "&lt;b&gt;" in out["logs"]


def test_a_long_diff_is_sent_as_a_document(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    long_diff = "".join(f"+    line_{i} = {i}  # <tuned>\n" for i in range(400))
    journal.save_view(live.data_dir, RunView(run_id=RUN_ID, status="done", outcome="rejected", diff=long_diff))
    short_id = "20261122-201500-ffffff"
    journal.save_view(live.data_dir, RunView(run_id=short_id, status="done", diff="-a = 1\n+a = 2 <x>\n"))

    async def scenario() -> str:
        async with RunningBot(live, fake) as bot:
            fake.text(OPERATOR, f"/diff {RUN_ID}")
            await wait_for(lambda: fake.of("sendDocument"), "the document")
            return await bot.ask(OPERATOR, f"/diff {short_id}")

    short = asyncio.run(scenario())
    [document] = fake.of("sendDocument")
    filename, content = document.files["document"]
    assert filename == f"{RUN_ID}.diff" and content.decode() == long_diff
    assert RUN_ID in document.params["caption"]
    assert short == "<pre>-a = 1\n+a = 2 &lt;x&gt;\n</pre>"


def test_mute_and_unmute_per_chat(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)

    async def scenario() -> list[str]:
        async with RunningBot(live, fake) as bot:
            return [
                await bot.ask(OPERATOR, "/mute list"),
                await bot.ask(OPERATOR, "/mute bar_gap"),
                await bot.ask(OPERATOR, "/mute"),
                await bot.ask(VIEWER, "/mute list"),
                await bot.ask(OPERATOR, "/unmute bar_gap"),
                await bot.ask(OPERATOR, "/unmute bar_gap"),
            ]

    replies = asyncio.run(scenario())
    assert replies[0] == "Nothing is muted in this chat."
    assert "bar_gap are muted" in replies[1]
    assert replies[2] == "Muted here: bar_gap"
    assert replies[3] == "Nothing is muted in this chat.", "mutes are per chat"
    assert "back on" in replies[4] and "was not muted" in replies[5]


def test_reload_config_applies_the_new_access_lists(settings: Settings, fake: FakeTelegram, tmp_path: Path) -> None:
    live = bot_settings(settings, fake)
    newcomer = 1003
    users = {str(OPERATOR): "operator", str(VIEWER): "operator", str(newcomer): "viewer"}

    def reload() -> Settings:
        return Settings(data_dir=live.data_dir, telegram={"users": users, "language": "pt"})

    async def scenario() -> list[str]:
        async with RunningBot(live, fake, reload=reload) as bot:
            fake.text(newcomer, "/status")
            await bot.handled()
            changed = await bot.ask(OPERATOR, "/reload_config")
            return [changed, await bot.ask(newcomer, "/status"), await bot.ask(VIEWER, "/pause")]

    changed, newcomer_status, promoted = asyncio.run(scenario())
    assert f"user {newcomer}: none → viewer" in changed and f"user {VIEWER}: viewer → operator" in changed
    assert "language: en → pt" in changed
    assert "Comandante" in newcomer_status, "let in, in the new default language"
    assert "paradas" in promoted and control(live)["paused"] is True
    assert len(fake.sent_to(newcomer)) == 2, "one refusal before the reload, one answer after"
