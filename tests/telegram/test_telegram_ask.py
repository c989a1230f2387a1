"""Free text from an operator goes to the agent (scripted model answers through the real LLM
client; a question needs no sandbox), with one progress message that becomes the reply."""

from __future__ import annotations

import asyncio
import json

from fake_telegram_api import FakeTelegram
from telegram_harness import GROUP, OPERATOR, RunningBot, audit_lines, bot_settings, wait_for

from sorte import service
from sorte.config import LLMSettings, ProviderSettings, RoleSettings, RoleTarget, Settings
from sorte.llm.client import LLM
from sorte.llm.providers.fake import FakeProvider
from sorte.telegram import build_application
from sorte.telegram.ask import Progress

ANSWER = "Momentum buys when the fast average crosses above the slow one <and> sells on the way down."


class Model:
    def __init__(self, intent: dict) -> None:
        self.intent, self.calls = intent, 0

    def __call__(self, model: str, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        text = "\n".join(m["content"] for m in messages)
        return json.dumps(self.intent if "Classify it" in text else {"text": ANSWER})


def with_llm(settings: Settings, fake: FakeTelegram, model: Model) -> tuple[Settings, LLM]:
    role = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
    llm_settings = LLMSettings(
        providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": role, "coder": role}
    )
    live = bot_settings(settings.model_copy(update={"llm": llm_settings}), fake)
    return live, LLM(live.llm, None, {"fake": FakeProvider("fake", live.llm.providers["fake"], model)})


def test_a_question_gets_a_progress_message_that_becomes_the_answer(settings: Settings, fake: FakeTelegram) -> None:
    model = Model({"kind": "explain", "strategy": "momentum", "language": "en", "summary": "explain momentum"})
    live, llm = with_llm(settings, fake, model)

    async def scenario() -> dict:
        async with RunningBot(live, fake, llm=llm):
            fake.text(OPERATOR, "how does the momentum strategy work? what are its settings?")
            [progress] = await wait_for(lambda: fake.messages(OPERATOR), "the progress message")
            await wait_for(lambda: "Current settings" in progress["text"], "the answer")
            return progress

    progress = asyncio.run(scenario())
    first = fake.of("sendMessage")[0].params
    assert first["text"] == "Working on it…" and first["chat_id"] == OPERATOR
    assert "momentum: Moving-average momentum crossover" in progress["text"]
    assert "stop_loss = 0.02 [0, 0.5]" in progress["text"], progress["text"]
    assert len(fake.messages(OPERATOR)) == 1, "one message, edited; no approval for a question"
    [view] = service.runs(live)
    assert view.outcome == "answered" and view.sender == str(OPERATOR)
    assert [(a["action"], a["ok"]) for a in audit_lines(live)] == [("ask", True)]
    assert model.calls == 0, "a strategy's settings come from the catalogue, not from a model"


def test_a_refused_request_says_why_and_group_chatter_is_not_a_request(settings: Settings, fake: FakeTelegram) -> None:
    model = Model({"kind": "explain", "strategy": None, "language": "pt", "summary": "x"})
    live, llm = with_llm(settings, fake, model)
    users = {str(OPERATOR): "operator"}
    live = live.model_copy(update={"telegram": live.telegram.model_copy(update={"users": users})})

    async def scenario() -> None:
        async with RunningBot(live, fake, llm=llm) as bot:
            fake.text(OPERATOR, "aumenta o stop " + "muito " * 670)  # over the agent's 4000, under Telegram's 4096
            [progress] = await wait_for(lambda: fake.messages(OPERATOR), "the progress message")
            await wait_for(lambda: "Não funcionou" in progress["text"], "the refusal")
            fake.text(OPERATOR, "anyone up for lunch? the momentum chart looks odd", chat_id=GROUP)
            await bot.handled()
            assert "Sorte" in await bot.ask(OPERATOR, "/status", chat_id=GROUP)  # commands still work there

    asyncio.run(scenario())
    assert "request too long" in fake.messages(OPERATOR)[0]["text"]
    assert model.calls == 0, "nothing reached the model"
    assert service.runs(live) == []
    assert len(fake.sent_to(GROUP)) == 1, "the group's chatter got no answer, only /status did"


def test_progress_edits_only_the_latest_step_and_only_when_it_changed(settings: Settings, fake: FakeTelegram) -> None:
    async def scenario() -> list[bool]:
        app = build_application(bot_settings(settings, fake))
        await app.initialize()
        try:
            sent = await app.bot.send_message(chat_id=OPERATOR, text="A trabalhar nisso…")
            progress = Progress(app.bot, OPERATOR, sent.message_id, "pt", interval_s=2.0)
            shown = [await progress.flush()]  # nothing reported yet
            progress.on_event("interpret", "enter", {})
            shown.append(await progress.flush())
            progress.on_event("interpret", "leave", {"duration_s": 0.1})
            shown.append(await progress.flush())  # a leave is no new step
            for node in ("recall", "plan", "edit", "validate"):  # faster than the edits: only the last shows
                progress.on_event(node, "enter", {})
            shown.append(await progress.flush())
            shown.append(await progress.flush())
            return shown
        finally:
            await app.shutdown()

    assert asyncio.run(scenario()) == [False, True, False, True, False]
    edits = [c.params["text"] for c in fake.of("editMessageText")]
    assert edits == ["A trabalhar nisso… a entender o pedido", "A trabalhar nisso… a validar na sandbox"]
