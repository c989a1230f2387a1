"""Tier 2: the model asked in small steps whose schemas come from the catalogue (scripted answers
through the real LLM client and its schema validation)."""

from __future__ import annotations

import asyncio
import json

import pytest

from sorte.config import REPO_ROOT, LLMSettings, ProviderSettings, RoleSettings, RoleTarget
from sorte.interpret import Interpreter, build_catalogue, interpret
from sorte.llm.client import LLM
from sorte.llm.providers.fake import FakeProvider


@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue(REPO_ROOT)


def client(answers: list[dict]) -> tuple[LLM, FakeProvider]:
    role = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
    settings = LLMSettings(providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": role})
    fake = FakeProvider("fake", settings.providers["fake"], [json.dumps(a) for a in answers])
    return LLM(settings, None, {"fake": fake}), fake


UNSURE = "could you make the momentum thing a bit safer, like three percent on the exit"


def test_the_schemas_name_only_what_exists(catalogue) -> None:
    assert Interpreter(catalogue).read(UNSURE).confidence < 0.8
    llm, fake = client([{"kind": "change"}, {"target": "momentum"}, {"name": "stop_loss"}, {"value": 0.03}])
    reading = asyncio.run(interpret(UNSURE, catalogue, llm, weak_model=False))
    schemas = [schema for _, _, schema in fake.calls]
    intents = schemas[0]["properties"]["kind"]["enum"]
    assert "approve" not in intents and "reject" not in intents and "rollback" not in intents
    targets = set(schemas[1]["properties"]["target"]["enum"])
    assert targets == {"breakout", "mean_reversion", "momentum", "cascade", "none"}
    assert set(schemas[2]["properties"]["name"]["enum"]) == set(catalogue.strategies["momentum"].params)
    value = schemas[3]["properties"]["value"]
    assert (value["minimum"], value["maximum"]) == (0.0, 0.5)
    assert (reading.tier, reading.action, reading.intent) == (2, "edit", "change")
    assert reading.restated() == "momentum.stop_loss: 0.02 → 0.03"


def test_a_value_outside_the_bounds_is_no_answer(catalogue) -> None:
    llm, _ = client([{"kind": "change"}, {"target": "momentum"}, {"name": "stop_loss"}, {"value": 3.0}])
    reading = asyncio.run(interpret(UNSURE, catalogue, llm, weak_model=False))
    assert reading.tier == 1 and reading.plan is None, "the invalid answer is dropped; tier 1's question stands"


def test_a_number_the_message_does_not_hold_is_only_a_question(catalogue) -> None:
    llm, _ = client([{"kind": "change"}, {"target": "momentum"}, {"name": "take_profit"}, {"value": 0.07}])
    reading = asyncio.run(interpret(UNSURE, catalogue, llm, weak_model=False))
    assert (reading.action, reading.plan) == ("ask", None)
    assert "momentum.take_profit: 0.04 → 0.07" in reading.message


def test_the_embedded_model_never_makes_a_change_or_a_guess_of_its_own(catalogue) -> None:
    llm, _ = client([{"kind": "change"}, {"target": "momentum"}, {"name": "stop_loss"}, {"value": 0.03}])
    reading = asyncio.run(interpret(UNSURE, catalogue, llm, weak_model=True))
    assert reading.tier == 1 and reading.plan is None
    llm, _ = client([{"kind": "status"}])
    assert asyncio.run(interpret("hmm, bot?", catalogue, llm, weak_model=True)).intent == "unclear"


def test_a_confident_reading_never_asks_the_model(catalogue) -> None:
    llm, fake = client([{"kind": "help"}])
    reading = asyncio.run(interpret("aumenta o stop loss do momentum para 3%", catalogue, llm))
    assert reading.tier == 1 and fake.calls == []
