"""Approval by button. The fast tests use a run recorded in the agent's journal; the slow one
drives a real agent run (scripted model answers through the real LLM client, the real guardian
in the local sandbox) from a plain-language message to a merge by pressing Approve."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from fake_telegram_api import FakeTelegram
from project_repo import copy_project, git
from telegram_harness import OPERATOR, STRANGER, VIEWER, RunningBot, add_alert, audit_lines, bot_settings, wait_for

from sorte import service
from sorte.agent import journal
from sorte.agent.views import RunView
from sorte.config import (
    GitSettings,
    GuardianSettings,
    LLMSettings,
    ProviderSettings,
    RoleSettings,
    RoleTarget,
    Settings,
)
from sorte.llm.client import LLM
from sorte.llm.providers.fake import FakeProvider

RUN_ID = "20261122-201500-a1b2c3"
VERDICT = "metric    base   cand\nsharpe    1.00   1.20\nmax_dd    0.10   0.08"


def waiting_run(settings: Settings, diff: str = "-stop_loss = 0.02\n+stop_loss = 0.03\n") -> RunView:
    view = RunView(
        run_id=RUN_ID,
        request="raise momentum's stop loss to 3%",
        status="awaiting_approval",
        plan_summary="Raise momentum's stop loss to 3%",
        diff=diff,
        verdict_text=VERDICT,
    )
    journal.save_view(settings.data_dir, view)
    return view


def sent_with_buttons(fake: FakeTelegram, chat_id: int) -> list[dict]:
    """Messages the bot sent to ``chat_id`` that carry inline buttons, as they are now."""
    return [m for m in fake.messages(chat_id) if "reply_markup" in m]


def test_a_long_diff_goes_as_a_document_beside_the_approval(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake)
    long_diff = "".join(f"+threshold_{i} = {i}\n" for i in range(300))
    waiting_run(live, diff=long_diff)

    async def scenario() -> None:
        async with RunningBot(live, fake):
            await wait_for(lambda: (live.data_dir / "telegram" / "state.json").exists(), "the pusher to start")
            add_alert(live, "approval_needed", f"run {RUN_ID} waits for approval", run_id=RUN_ID)
            await wait_for(lambda: sent_with_buttons(fake, OPERATOR), "the approval message")

    asyncio.run(scenario())
    [document] = fake.of("sendDocument")
    assert document.files["document"] == (f"{RUN_ID}.diff", long_diff.encode())
    [approval] = sent_with_buttons(fake, OPERATOR)
    assert "attached as 20261122-201500-a1b2c3.diff" in approval["text"] and "threshold_1 " not in approval["text"]
    assert "sharpe    1.00   1.20" in approval["text"]


def test_viewers_and_strangers_pressing_change_nothing(settings: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(settings, fake, users={str(OPERATOR): "operator", str(VIEWER): "viewer"})
    waiting_run(live)

    presses: dict[str, int] = {}

    async def scenario() -> dict:
        async with RunningBot(live, fake) as bot:
            await wait_for(lambda: (live.data_dir / "telegram" / "state.json").exists(), "the pusher to start")
            add_alert(live, "approval_needed", f"run {RUN_ID} waits", run_id=RUN_ID)
            [approval] = await wait_for(lambda: sent_with_buttons(fake, OPERATOR), "the approval message")
            before = dict(approval)
            presses["viewer"] = fake.press(VIEWER, approval, f"approve:{RUN_ID}")
            presses["stranger"] = fake.press(STRANGER, approval, f"reject:{RUN_ID}")
            await wait_for(lambda: len(fake.of("answerCallbackQuery")) >= 2, "both presses answered")
            await bot.handled()
            return before

    before = asyncio.run(scenario())
    assert fake.message(OPERATOR, before["message_id"]) == before, "the approval message is untouched"
    assert not fake.of("editMessageText")
    answers = {c.params["callback_query_id"]: c.params for c in fake.of("answerCallbackQuery")}
    viewer, stranger = answers[f"cq{presses['viewer']}"], answers[f"cq{presses['stranger']}"]
    assert viewer["text"] == "Only operators may approve or reject." and viewer["show_alert"] is True
    assert "This bot is private" in stranger["text"] and "raise" not in stranger["text"]
    assert service.run(live, RUN_ID).status == "awaiting_approval"
    refused = [(a["who"], a["action"]) for a in audit_lines(live) if not a["ok"]]
    assert (f"telegram:{VIEWER}", "approve") in refused and (f"telegram:{STRANGER}", "telegram") in refused
    assert fake.sent_to(VIEWER) == [], "a viewer's press sends them nothing but the alert answer"
    assert len(fake.sent_to(OPERATOR)) == 1, "the presses sent nothing into the operator's chat"


def test_a_failed_decision_puts_the_buttons_back(settings: Settings, fake: FakeTelegram) -> None:
    """The journal says the run waits, but the agent has no such thread: the service refuses and
    the approval message gets its buttons back instead of claiming a decision."""
    live = bot_settings(settings, fake)
    waiting_run(live)

    async def scenario() -> str:
        async with RunningBot(live, fake) as bot:
            await wait_for(lambda: (live.data_dir / "telegram" / "state.json").exists(), "the pusher to start")
            add_alert(live, "approval_needed", f"run {RUN_ID} waits", run_id=RUN_ID)
            await wait_for(lambda: sent_with_buttons(fake, OPERATOR), "the approval message")
            return await bot.ask(OPERATOR, f"/approve {RUN_ID}")

    answer = asyncio.run(scenario())
    assert answer.startswith("That did not work") and "not waiting for approval" in answer
    [approval] = sent_with_buttons(fake, OPERATOR)
    assert approval["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"approve:{RUN_ID}"
    assert "Approval needed" in approval["text"]
    assert [a["ok"] for a in audit_lines(live) if a["action"] == "approve"] == [False]


# -- the whole way, with a real agent run -------------------------------------------------------
STOP_LOSS = {
    "summary": "Raise momentum's stop loss to 3%",
    "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}],
}


class Model:
    """Scripted answers: the interpreter's Intent, then the coder's plan."""

    def __init__(self, intent: dict, plan: dict) -> None:
        self.intent, self.plan = intent, plan

    def __call__(self, model: str, messages: list[dict[str, str]]) -> str:
        text = "\n".join(m["content"] for m in messages)
        return json.dumps(self.intent if "Classify it" in text else self.plan)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.mark.slow
def test_a_request_in_words_is_approved_by_button_and_merged(
    settings: Settings, fake: FakeTelegram, repo: Path
) -> None:
    role = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
    agent = settings.model_copy(
        update={
            "strategies_dir": repo / "strategies",
            "git": GitSettings(repo_root=repo),
            "guardian": GuardianSettings(fail_fast=False),
            "sandbox": "local",
            "llm": LLMSettings(
                providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": role, "coder": role}
            ),
        }
    )
    live = bot_settings(agent, fake)
    text = "aumenta o stop loss do momentum para 3%"
    model = Model({"kind": "change", "strategy": "momentum", "language": "pt", "summary": text}, STOP_LOSS)
    llm = LLM(live.llm, None, {"fake": FakeProvider("fake", live.llm.providers["fake"], model)})
    main_before = git(repo, "rev-parse", "main")

    async def scenario() -> tuple[dict, dict, str]:
        async with RunningBot(live, fake, llm=llm) as bot:
            fake.text(OPERATOR, text)
            [live_message] = await wait_for(lambda: sent_with_buttons(fake, OPERATOR), "the approval message", 280)
            approval = dict(live_message)  # as it was sent; the fake's copy follows the edits
            run_id = approval["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":", 1)[1]
            assert git(repo, "rev-parse", "main") == main_before, "nothing merged before the press"
            fake.press(VIEWER, approval, f"approve:{run_id}")  # a viewer first: refused, nothing moves
            await wait_for(lambda: fake.of("answerCallbackQuery"), "the viewer's answer")
            fake.press(OPERATOR, approval, f"approve:{run_id}")
            await wait_for(
                lambda: "Aprovada" in fake.message(OPERATOR, approval["message_id"])["text"], "the decision", 120
            )
            decided = dict(fake.message(OPERATOR, approval["message_id"]))
            fake.press(OPERATOR, approval, f"approve:{run_id}")  # a second press on a decided run
            await wait_for(lambda: len(fake.of("answerCallbackQuery")) >= 3, "the second press answered")
            await bot.handled()
            return approval, decided, run_id

    approval, decided, run_id = asyncio.run(scenario())
    # the progress message: "working", then the steps, then the reply
    first = fake.of("sendMessage")[0].params
    assert first["text"] == "A trabalhar nisso…"
    edits = [c.params["text"] for c in fake.of("editMessageText")]
    steps = [e for e in edits if e.startswith("A trabalhar nisso… ")]
    assert f"A execução {run_id} passou as verificações" in edits[len(steps)], "the reply replaces the progress"
    assert len(steps) == len(set(steps)), "an edit only when the step changed"
    assert "Aprovação necessária" in approval["text"] and "stop_loss" in approval["text"]
    assert "momentum.stop_loss: 0.02 → 0.03" in approval["text"]
    assert [b["text"] for b in approval["reply_markup"]["inline_keyboard"][0]] == ["✅ Aprovar", "❌ Rejeitar"]

    final = service.run(live, run_id)
    assert final.status == "done" and final.outcome == "merged", final
    assert git(repo, "rev-parse", "main") == final.merged_sha != main_before
    assert "0.03" in git(repo, "show", "main:strategies/momentum.py")
    assert "reply_markup" not in decided and "merged" in decided["text"]
    answers = [c.params for c in fake.of("answerCallbackQuery")]
    assert answers[0]["show_alert"] is True  # the viewer
    assert "já foi decidida" in answers[-1]["text"]
    decisions = [(a["who"], a["action"], a["ok"]) for a in audit_lines(live) if a["action"] == "approve"]
    assert decisions == [
        (f"telegram:{VIEWER}", "approve", False),
        (f"telegram:{OPERATOR}", "approve", True),
        (f"telegram:{OPERATOR}", "approve", False),  # the second press on a decided run: refused, audited
    ]
    git(repo, "reset", "-q", "--hard", main_before)
