"""The Ollama and OpenAI-compatible providers through the real client libraries
(langchain-ollama / ollama, langchain-openai / openai) against local servers that speak
their wire protocols (tests/fake_llm_servers.py), directly and through ``LLM.ask``.

Every failure gives a typed error or a fallback to the next target of the role's chain,
never a hang: each test runs under a 30 s timeout, and slow answers are checked against
generous bounds only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ollama
import openai
import pytest
from fake_llm_servers import VALID_ANSWER, FakeOllama, FakeOpenAI, Fault, Reply, unused_port
from pydantic import BaseModel, Field

from sorte.config import LLMSettings, ProviderSettings, RoleSettings, RoleTarget
from sorte.llm.client import LLM, AllBackendsFailed
from sorte.llm.errors import InvalidOutput, LLMTimeout, LLMUnavailable, ModelMissing
from sorte.llm.providers.ollama import OllamaProvider
from sorte.llm.providers.openai_compat import OpenAICompatProvider

pytestmark = pytest.mark.timeout(30)

MESSAGES = [
    {"role": "system", "content": "You are a technical analyst. Answer with JSON only."},
    {"role": "user", "content": "BTC/USDT: RSI 28, MACD crossing up. Score it."},
]
FALLBACK = {"score": 0.5, "side": "HOLD", "reason": "scripted fallback"}
SLOW_S = 20.0  # far past every timeout below; stop() wakes the server at teardown


class Verdict(BaseModel):
    score: float = Field(ge=0, le=1)
    side: Literal["BUY", "SELL", "HOLD"]
    reason: str


SCHEMA = Verdict.model_json_schema()


@dataclass
class Backend:
    kind: str  # "ollama" | "openai"
    server: FakeOllama | FakeOpenAI

    @property
    def model(self) -> str:
        return self.server.models[0]

    def settings(self, timeout_s: float = 5.0, **kw: Any) -> ProviderSettings:
        return ProviderSettings(kind=self.kind, base_url=kw.pop("base_url", self.server.url), timeout_s=timeout_s, **kw)

    def provider(self, timeout_s: float = 5.0, **kw: Any) -> OllamaProvider | OpenAICompatProvider:
        cls = OllamaProvider if self.kind == "ollama" else OpenAICompatProvider
        return cls(self.kind, self.settings(timeout_s, **kw))

    def sent_schema(self, body: dict[str, Any]) -> Any:
        """The JSON schema as the request carried it: Ollama ``format``, OpenAI ``response_format``."""
        if self.kind == "ollama":
            return body["format"]
        assert body["response_format"]["type"] == "json_schema"
        return body["response_format"]["json_schema"]["schema"]


@pytest.fixture(params=["ollama", "openai"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    server = (FakeOllama if request.param == "ollama" else FakeOpenAI)().start()
    try:
        yield Backend(request.param, server)
    finally:
        server.stop()


def make_llm(
    backend: Backend,
    tmp_path: Path,
    *,
    model: str | None = None,
    timeout_s: float = 5.0,
    role_timeout_s: float | None = None,
    fallback: bool = False,
    base_url: str | None = None,
) -> LLM:
    """An LLM whose "standard" role asks the server first and, with ``fallback``, a scripted
    ``fake`` provider next. Providers are built from the settings, as in production."""
    providers = {"remote": backend.settings(timeout_s, base_url=base_url or backend.server.url)}
    chain = [RoleTarget(provider="remote", model=model or backend.model)]
    if fallback:
        script = tmp_path / "fallback.json"
        script.write_text(json.dumps([FALLBACK]))
        providers["fake"] = ProviderSettings(kind="fake", model_path=script)
        chain.append(RoleTarget(provider="fake", model="scripted"))
    settings = LLMSettings(
        providers=providers, roles={"standard": RoleSettings(chain=chain, timeout_s=role_timeout_s, max_tokens=128)}
    )
    return LLM(settings)


def ask(llm: LLM, **kw: Any):
    async def go():
        try:
            return await llm.ask("standard", MESSAGES, Verdict, stage="technical", **kw)
        finally:
            await llm.close()

    return asyncio.run(go())


def complete(provider: OllamaProvider | OpenAICompatProvider, model: str, max_tokens: int = 64):
    return asyncio.run(provider.complete(model, MESSAGES, SCHEMA, max_tokens))


def fallback_count(llm: LLM, reason: str) -> float:
    value = llm.metrics.registry.get_sample_value("sorte_llm_fallbacks_total", {"role": "standard", "reason": reason})
    return value or 0.0


# -- success ---------------------------------------------------------------------------------


def test_ask_returns_a_validated_object_and_sends_the_schema(backend: Backend, tmp_path: Path) -> None:
    answer = ask(make_llm(backend, tmp_path))

    assert answer.value == Verdict.model_validate_json(VALID_ANSWER)
    assert (answer.backend, answer.model, answer.cache, answer.fallbacks) == ("remote", backend.model, "miss", [])
    assert answer.tokens_in and answer.tokens_out  # usage reported by the server reaches the answer
    (body,) = backend.server.chat_requests()
    assert body["model"] == backend.model
    assert backend.sent_schema(body) == SCHEMA
    assert [(m["role"], m["content"]) for m in body["messages"]] == [(m["role"], m["content"]) for m in MESSAGES]


def test_provider_sends_what_the_protocol_expects(backend: Backend) -> None:
    done = complete(backend.provider(api_key="sk-test"), backend.model, max_tokens=64)

    assert Verdict.model_validate_json(done.text).side == "BUY"
    assert done.tokens_in and done.tokens_out
    (request,) = [r for r in backend.server.requests if r.method == "POST"]
    body = request.body
    assert backend.sent_schema(body) == SCHEMA
    if backend.kind == "ollama":
        assert request.path == "/api/chat"
        assert body["stream"] is True  # ChatOllama.ainvoke streams NDJSON and aggregates it
        assert body["options"]["num_predict"] == 64
        assert body["options"]["temperature"] == 0.0
    else:
        assert request.path == "/v1/chat/completions"
        assert body.get("max_completion_tokens", body.get("max_tokens")) == 64
        assert body["temperature"] == 0.0
        assert request.headers.get("authorization") == "Bearer sk-test"


def test_the_same_provider_works_across_event_loops(backend: Backend) -> None:
    """Each asyncio.run is a new loop (CLI commands, backtests): no connection of a dead loop
    may be reused. langchain-openai's shared HTTP client failed the second call here with
    "Event loop is closed"."""
    provider = backend.provider()
    for _ in range(3):
        assert Verdict.model_validate_json(complete(provider, backend.model).text)
    assert len(backend.server.chat_requests()) == 3


# -- model missing ---------------------------------------------------------------------------


def test_missing_model_raises_model_missing(backend: Backend) -> None:
    with pytest.raises(ModelMissing, match="absent-model"):
        complete(backend.provider(), "absent-model")


def test_missing_model_falls_back_to_the_next_target(backend: Backend, tmp_path: Path) -> None:
    llm = make_llm(backend, tmp_path, model="absent-model", fallback=True)
    answer = ask(llm)

    assert answer.backend == "fake"
    assert answer.value == Verdict(**FALLBACK)
    (reason,) = answer.fallbacks
    assert reason.startswith("remote:absent-model:") and "has no model" in reason
    assert fallback_count(llm, "model_missing") == 1


def test_a_404_that_is_not_about_the_model_is_not_model_missing(backend: Backend) -> None:
    """A wrong base URL (Ollama's URL with /v1, an OpenAI URL without /v1) must not send the
    user off to pull a model they already have."""
    url = backend.server.url + "/v1" if backend.kind == "ollama" else backend.server.url.removesuffix("/v1")
    with pytest.raises(LLMUnavailable, match="404"):
        complete(backend.provider(base_url=url), backend.model)


# -- server down -----------------------------------------------------------------------------


def test_server_down_raises_unavailable(backend: Backend) -> None:
    provider = backend.provider()
    backend.server.stop()
    with pytest.raises(LLMUnavailable, match="unreachable"):
        complete(provider, backend.model)


def test_nothing_listening_raises_unavailable(backend: Backend) -> None:
    url = f"http://127.0.0.1:{unused_port()}" + ("/v1" if backend.kind == "openai" else "")
    with pytest.raises(LLMUnavailable):
        complete(backend.provider(base_url=url), backend.model)


def test_server_down_falls_back_or_fails_with_every_reason(backend: Backend, tmp_path: Path) -> None:
    backend.server.stop()
    answer = ask(make_llm(backend, tmp_path, fallback=True))
    assert answer.backend == "fake" and "unreachable" in answer.fallbacks[0]

    with pytest.raises(AllBackendsFailed, match="unreachable") as failed:
        ask(make_llm(backend, tmp_path))
    assert len(failed.value.reasons) == 1


# -- slow answers ----------------------------------------------------------------------------


def test_slow_answer_raises_timeout_within_about_the_timeout(backend: Backend) -> None:
    backend.server.delay_s = SLOW_S
    with pytest.raises(LLMTimeout):  # a hang would hit the test's timeout instead
        complete(backend.provider(timeout_s=0.5), backend.model)


def test_stream_that_stalls_raises_timeout(backend: Backend) -> None:
    """Headers and a first piece of the answer, then silence: the read timeout still fires."""
    backend.server.script(Fault.STALL)
    with pytest.raises(LLMTimeout):  # a hang would hit the test's timeout instead
        complete(backend.provider(timeout_s=0.5), backend.model)


def test_slow_answer_past_the_role_timeout_falls_back(backend: Backend, tmp_path: Path) -> None:
    """The role's timeout (0.5 s) is shorter than the provider's (30 s): the client's own
    deadline fires, and the next target answers."""
    backend.server.delay_s = SLOW_S
    llm = make_llm(backend, tmp_path, timeout_s=30.0, role_timeout_s=0.5, fallback=True)
    answer = ask(llm)
    assert answer.backend == "fake"
    assert "0.5s" in answer.fallbacks[0]
    assert fallback_count(llm, "timeout") == 1


def test_slow_answer_without_fallback_fails_with_the_reason(backend: Backend, tmp_path: Path) -> None:
    backend.server.delay_s = SLOW_S
    with pytest.raises(AllBackendsFailed, match="0.5s"):
        ask(make_llm(backend, tmp_path, timeout_s=0.5))


# -- malformed bodies and answers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (Fault.NOT_JSON, "malformed response"),
        (Fault.TRUNCATED, "malformed response"),
        (Fault.DROPPED, "unreachable"),
        (Fault.SERVER_ERROR, "500"),
    ],
)
def test_broken_http_answer_is_a_clear_unavailable_error(backend: Backend, fault: Fault, match: str) -> None:
    """A body the client cannot read is the server's fault, not the model's: LLMUnavailable,
    saying what was wrong (InvalidOutput is kept for answers that do not fit the schema)."""
    backend.server.script(fault)
    with pytest.raises(LLMUnavailable, match=match):
        complete(backend.provider(), backend.model)


def test_ollama_error_in_the_middle_of_the_stream() -> None:
    with FakeOllama(answers=[Fault.STREAM_ERROR]) as server:
        provider = OllamaProvider("ollama", ProviderSettings(kind="ollama", base_url=server.url))
        with pytest.raises(LLMUnavailable, match="failed while answering"):
            complete(provider, server.models[0])


@pytest.mark.parametrize("fault", [Fault.NOT_JSON, Fault.TRUNCATED, Fault.DROPPED])
def test_broken_http_answer_falls_back(backend: Backend, tmp_path: Path, fault: Fault) -> None:
    backend.server.script(fault)
    answer = ask(make_llm(backend, tmp_path, fallback=True))
    assert answer.backend == "fake"
    assert answer.fallbacks[0].startswith(f"remote:{backend.model}:")


def test_answer_that_is_not_json_is_retried_once(backend: Backend, tmp_path: Path) -> None:
    backend.server.script("Sure! Here is my analysis: score 0.8, BUY", VALID_ANSWER)
    answer = ask(make_llm(backend, tmp_path))

    assert answer.backend == "remote" and answer.value.side == "BUY"
    first, second = backend.server.chat_requests()
    assert backend.sent_schema(second) == SCHEMA
    retry = [m["content"] for m in second["messages"]]
    assert retry[-2] == "Sure! Here is my analysis: score 0.8, BUY"  # the model sees its own answer
    assert "invalid" in retry[-1]  # and what was wrong with it


def test_answer_that_breaks_the_schema_is_retried(backend: Backend, tmp_path: Path) -> None:
    backend.server.script('{"score": 7, "side": "BUY", "reason": "very sure"}', VALID_ANSWER)
    answer = ask(make_llm(backend, tmp_path))
    assert answer.value.score == 0.8
    assert "score" in backend.server.chat_requests()[1]["messages"][-1]["content"]


def test_answer_invalid_every_time_gives_invalid_output_then_falls_back(backend: Backend, tmp_path: Path) -> None:
    backend.server.script('{"score": 0.8, "side": "BUY", "reason": "cut sho')
    with pytest.raises(AllBackendsFailed, match="not valid JSON"):
        ask(make_llm(backend, tmp_path))
    assert len(backend.server.chat_requests()) == 2  # one answer and one retry, no more

    llm = make_llm(backend, tmp_path, fallback=True)
    assert ask(llm).backend == "fake"
    assert fallback_count(llm, "invalid_output") == 1


def test_openai_answer_cut_at_the_token_limit_is_invalid_output() -> None:
    with FakeOpenAI(answers=[Reply(content='{"score": 0.8, "side": "BU', finish_reason="length")]) as server:
        provider = OpenAICompatProvider("openai", ProviderSettings(kind="openai", base_url=server.url))
        with pytest.raises(InvalidOutput, match="token limit"):
            complete(provider, server.models[0])


def test_openai_wrong_api_key_is_a_clear_error() -> None:
    with FakeOpenAI(api_key="sk-right") as server:
        wrong = OpenAICompatProvider("o", ProviderSettings(kind="openai", base_url=server.url, api_key="sk-wrong"))
        with pytest.raises(LLMUnavailable, match="401"):
            complete(wrong, server.models[0])
        right = OpenAICompatProvider("o", ProviderSettings(kind="openai", base_url=server.url, api_key="sk-right"))
        assert Verdict.model_validate_json(complete(right, server.models[0]).text)


# -- reasoning models ------------------------------------------------------------------------


def test_think_block_before_the_json_is_stripped(backend: Backend, tmp_path: Path) -> None:
    """A reasoning model (DeepSeek-R1) thinks aloud first; its draft JSON inside <think> must
    not be taken for the answer."""
    thoughts = 'RSI 28 is oversold. Draft: {"score": 0.1, "side": "SELL", "reason": "draft"}. No: MACD is up.'
    backend.server.script(Reply(content=VALID_ANSWER, thinking=thoughts))
    answer = ask(make_llm(backend, tmp_path))

    assert answer.value == Verdict.model_validate_json(VALID_ANSWER)
    assert len(backend.server.chat_requests()) == 1  # no retry was needed


def test_openai_reasoning_in_a_separate_field_is_ignored(tmp_path: Path) -> None:
    with FakeOpenAI(answers=[Reply(thinking="let me think {not json}")]) as server:
        server.separate_reasoning = True
        answer = ask(make_llm(Backend("openai", server), tmp_path))
        assert answer.value.side == "BUY"


# -- health ----------------------------------------------------------------------------------


def test_health_lists_the_models(backend: Backend) -> None:
    health = asyncio.run(backend.provider().health())
    assert health.reachable
    assert health.models == backend.server.models


def test_health_when_the_server_is_down(backend: Backend) -> None:
    provider = backend.provider()
    backend.server.stop()
    health = asyncio.run(provider.health())
    assert not health.reachable
    assert "unreachable" in health.detail
    assert health.models == []


def test_health_of_something_that_is_not_the_server(backend: Backend) -> None:
    backend.server.malformed_paths = {"/api/tags", "/v1/models"}
    health = asyncio.run(backend.provider().health())
    assert not health.reachable
    assert health.detail


# -- the fake servers speak the protocols the clients use --------------------------------------


def test_fake_ollama_answers_non_streaming_and_show() -> None:
    async def go(url: str) -> tuple[Any, Any, str]:
        client = ollama.AsyncClient(host=url)
        try:
            chat = await client.chat(model="deepseek-r1:8b", messages=MESSAGES, format=SCHEMA, stream=False)
            show = await client.show("deepseek-r1:8b")
            with pytest.raises(ollama.ResponseError) as missing:
                await client.show("absent-model")
            return chat, show, missing.value.error
        finally:
            await client.close()

    with FakeOllama() as server:
        chat, show, missing = asyncio.run(go(server.url))
        assert Verdict.model_validate_json(chat.message.content)
        assert chat.done and chat.eval_count
        assert show.details.family == "llama"
        assert missing == "model 'absent-model' not found"
        assert server.chat_requests()[0]["stream"] is False


def test_fake_openai_streams_server_sent_events() -> None:
    async def go(url: str) -> str:
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        try:
            stream = await client.chat.completions.create(
                model="qwen2.5-coder-7b-instruct", messages=MESSAGES, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        finally:
            await client.close()

    with FakeOpenAI() as server:
        assert Verdict.model_validate_json(asyncio.run(go(server.url)))


def test_openai_server_without_json_schema_support_gets_json_mode_and_the_schema_in_the_prompt() -> None:
    with FakeOpenAI(answers=[Reply(content=VALID_ANSWER)]) as server:
        server.json_mode_only = True
        provider = OpenAICompatProvider("openai", ProviderSettings(kind="openai", base_url=server.url))
        done = complete(provider, server.models[0])
        assert Verdict.model_validate_json(done.text)
        sent = [r for r in server.requests if r.path == "/v1/chat/completions"]
        assert [r.body["response_format"]["type"] for r in sent] == ["json_schema", "json_object"]
        assert "Reply with JSON matching this schema" in sent[-1].body["messages"][-1]["content"]
        complete(provider, server.models[0])  # remembered: straight to JSON mode
        sent = [r for r in server.requests if r.path == "/v1/chat/completions"]
        assert sent[-1].body["response_format"]["type"] == "json_object" and len(sent) == 3
