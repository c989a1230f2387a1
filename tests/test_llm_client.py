from __future__ import annotations

import asyncio
from typing import Literal

import pytest
import structlog
from prometheus_client import generate_latest
from pydantic import BaseModel, Field

from sorte.config import LLMSettings, ProviderSettings, RoleSettings, RoleTarget
from sorte.llm.client import LLM, AllBackendsFailed, ReplayMissing, replay_report
from sorte.llm.errors import InvalidOutput, LLMUnavailable, ModelMissing, ReplayMiss
from sorte.llm.providers.fake import FakeProvider
from sorte.llm.structured import extract_json, parse_as, strip_thinking


class Verdict(BaseModel):
    score: float = Field(ge=0, le=1)
    side: Literal["BUY", "SELL", "HOLD"]
    reason: str


GOOD = '{"score": 0.8, "side": "BUY", "reason": "trend"}'
MSGS = [{"role": "user", "content": "BTC?"}]


def make(
    scripts: dict[str, list], timeout_s: float = 5.0, replay: bool = False, delays=None, tmp=None, concurrency: int = 2
):
    providers = {name: ProviderSettings(kind="fake", timeout_s=timeout_s, concurrency=concurrency) for name in scripts}
    chain = [RoleTarget(provider=name, model=f"{name}-model") for name in scripts]
    settings = LLMSettings(providers=providers, roles={"standard": RoleSettings(chain=chain)}, replay=replay)
    fakes = {
        name: FakeProvider(name, providers[name], list(script), (delays or {}).get(name, 0.0))
        for name, script in scripts.items()
    }
    return LLM(settings, tmp, fakes), fakes


def ask(llm, **kw):
    return asyncio.run(llm.ask("standard", MSGS, Verdict, stage="technical", **kw))


def test_structured_answer_and_schema_sent():
    llm, fakes = make({"a": [GOOD]})
    answer = ask(llm)
    assert answer.value == Verdict(score=0.8, side="BUY", reason="trend")
    assert (answer.backend, answer.model, answer.cache) == ("a", "a-model", "miss")
    assert fakes["a"].calls[0][2]["properties"]["side"]["enum"] == ["BUY", "SELL", "HOLD"]


@pytest.mark.parametrize("failure", [LLMUnavailable("down"), ModelMissing("no model"), '{"score": 7}'])
def test_falls_back_along_the_chain_and_says_why(failure):
    llm, fakes = make({"a": [failure], "b": [GOOD]})
    answer = ask(llm, retries=0)
    assert answer.backend == "b"
    assert answer.fallbacks and answer.fallbacks[0].startswith("a:a-model:")


def test_timeout_falls_back_without_hanging():
    llm, _ = make({"slow": [GOOD], "b": [GOOD]}, timeout_s=0.2, delays={"slow": 30})
    answer = ask(llm)
    assert answer.backend == "b" and "no answer within 0.2s" in answer.fallbacks[0]


def test_invalid_output_is_retried_with_the_error_then_accepted():
    llm, fakes = make({"a": ['{"score": 2, "side": "BUY", "reason": "x"}', GOOD]})
    assert ask(llm).value.score == 0.8
    retry_prompt = fakes["a"].calls[1][1][-1]["content"]
    assert "score" in retry_prompt and "invalid" in retry_prompt


def test_every_backend_failing_is_one_typed_error():
    llm, _ = make({"a": [LLMUnavailable("down")], "b": ["not json at all"]})
    with pytest.raises(AllBackendsFailed) as err:
        ask(llm, retries=0)
    assert len(err.value.reasons) == 2 and "no JSON object" in err.value.reasons[1]


def test_cache_answers_the_same_question_once(tmp_path):
    llm, fakes = make({"a": [GOOD]}, tmp=tmp_path / "c.db")
    first, second = ask(llm), ask(llm)
    assert (first.cache, second.cache) == ("miss", "hit-memory")
    assert len(fakes["a"].calls) == 1
    assert ask(llm, bypass_cache=True).cache == "bypass" and len(fakes["a"].calls) == 2


def test_replay_mode_never_calls_a_model_and_lists_misses(tmp_path):
    llm, fakes = make({"a": [GOOD]}, tmp=tmp_path / "c.db")
    ask(llm)
    asyncio.run(llm.close())
    replay, fakes = make({"a": [GOOD]}, tmp=tmp_path / "c.db", replay=True)
    assert ask(replay).cache == "hit-disk"
    with pytest.raises(ReplayMiss, match="no cached answer"):
        asyncio.run(replay.ask("standard", [{"role": "user", "content": "ETH?"}], Verdict, stage="risk"))
    assert fakes["a"].calls == []
    [missing] = replay.replay_misses
    assert (missing.role, missing.stage, missing.models) == ("standard", "risk", ("a-model",))
    assert len(missing.key) == 64


def test_replay_report_groups_by_stage_and_symbol_with_bars_and_key_prefixes():
    misses = [
        ReplayMissing("analysis", "standard", "GOOG", 1_700_000_000.0 + 60 * i, f"{i:02d}" + "ab" * 31, ("m",))
        for i in reversed(range(13))
    ] + [ReplayMissing("final", "sentiment", "ETH", None, "cd" * 32, ("m",))]
    text = replay_report(misses)
    lines = text.splitlines()
    assert lines[0].startswith("replay mode: 14 LLM answer(s) are not in the cache")
    assert len(lines) == 3  # one line per (stage, symbol), not one per bar
    goog = lines[1]
    assert "stage=analysis symbol=GOOG role=standard" in goog and "13 bar(s) missing" in goog
    assert goog.count("[") == 10 and goog.endswith("... and 3 more")
    assert "2023-11-14T22:13:20Z [00ababab]" in goog  # earliest bar first, with its key prefix
    assert "stage=final symbol=ETH" in lines[2] and "1 bar(s) missing: bar ? [cdcdcdcd]" in lines[2]


def test_hit_rate_counts_one_lookup_per_ask_across_the_chain(tmp_path):
    """Two targets, the first down: the first ask misses once (not once per target), the
    second hits the second target's cached answer: 1 hit, 1 miss."""
    llm, fakes = make({"a": [LLMUnavailable("down")], "b": [GOOD]}, tmp=tmp_path / "c.db")
    first, second = ask(llm), ask(llm)
    assert (first.cache, second.cache, second.backend) == ("miss", "hit-memory", "b")
    stats = llm.cache.stats()
    assert (stats.memory_hits + stats.disk_hits, stats.misses, stats.hit_rate) == (1, 1, 0.5)
    text = generate_latest(llm.metrics.registry).decode()
    assert 'sorte_llm_cache_total{result="hit"} 1.0' in text
    assert 'sorte_llm_cache_total{result="miss"} 1.0' in text
    assert "sorte_llm_cache_hit_ratio 0.5" in text


@pytest.mark.parametrize(
    ("failure", "reason", "words"),
    [
        (LLMUnavailable("connection refused"), "unavailable", "a unavailable (unreachable or a broken answer)"),
        (ModelMissing("no model"), "model_missing", "a does not have model a-model"),
        ('{"score": 7}', "invalid_output", "a gave no valid answer"),
    ],
)
def test_fallback_log_lines_name_the_real_cause(failure, reason, words):
    llm, _ = make({"a": [failure], "b": [GOOD]})
    with structlog.testing.capture_logs() as logs:
        answer = ask(llm, retries=0)
    assert answer.backend == "b"
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == f"[LLM] {words}: falling back to b"
    assert "timeout" not in warning["event"] and warning["reason"] == reason
    [done] = [e for e in logs if e["log_level"] == "info"]
    assert done["event"].startswith("[LLM] stage=technical backend=b model=b-model ")
    assert done["event"].endswith(f"cache=miss fallback=a->b reason={reason}")
    assert (done["fallback"], done["fallback_reason"]) == ("a->b", reason)


def test_timeout_fallback_log_lines_follow_the_design():
    llm, _ = make({"slow": [GOOD], "b": [GOOD]}, timeout_s=0.2, delays={"slow": 30})
    with structlog.testing.capture_logs() as logs:
        ask(llm)
    events = [e["event"] for e in logs]
    assert "[LLM] slow unavailable or slow (timeout 0.2s): falling back to b" in events
    assert any(e.endswith("cache=miss fallback=slow->b reason=timeout") for e in events)
    assert len(events) == 2  # one warning, one line for the call


def test_every_backend_failing_gives_the_short_cause():
    llm, _ = make({"a": [LLMUnavailable("down")], "b": [LLMUnavailable("down too")]})
    with pytest.raises(AllBackendsFailed) as err:
        ask(llm, retries=0)
    assert err.value.reason == "unavailable"
    llm, _ = make({"slow": [GOOD], "b": ["not json"]}, timeout_s=0.2, delays={"slow": 30})
    with structlog.testing.capture_logs() as logs, pytest.raises(AllBackendsFailed) as err:
        ask(llm, retries=0)
    assert err.value.reason == "timeout+invalid_output"
    assert logs[-1]["event"] == "[LLM] b gave no valid answer: no fallback left"


def test_concurrency_per_backend_is_bounded():
    llm, fakes = make({"a": [GOOD]}, delays={"a": 0.05}, concurrency=2)
    active = peak = 0
    original = fakes["a"].complete

    async def counting(*args):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            return await original(*args)
        finally:
            active -= 1

    fakes["a"].complete = counting

    async def many():
        await asyncio.gather(*(llm.ask("standard", [{"role": "user", "content": str(i)}], Verdict) for i in range(8)))

    asyncio.run(many())
    assert peak == 2


def test_each_call_logs_backend_model_latency_and_cache():
    llm, _ = make({"a": [LLMUnavailable("down")], "b": [GOOD]})
    with structlog.testing.capture_logs() as logs:
        ask(llm)
    events = [e["event"] for e in logs]
    assert "[LLM] a unavailable (unreachable or a broken answer): falling back to b" in events
    done = next(e for e in logs if e["event"].startswith("[LLM] stage=technical backend=b model=b-model"))
    assert done["cache"] == "miss" and done["latency_s"] >= 0 and done["role"] == "standard"


def test_think_blocks_and_fences_are_stripped():
    assert strip_thinking("<think>long\nchain</think> hello") == "hello"
    assert strip_thinking("<think>never closed") == ""
    assert extract_json('<think>x</think>```json\n{"a": 1}\n```') == '{"a": 1}'
    assert extract_json('Sure! {"a": {"b": 2}} hope it helps') == '{"a": {"b": 2}}'
    assert parse_as("<think>buy?</think>" + GOOD, Verdict).side == "BUY"
    with pytest.raises(InvalidOutput, match="not valid JSON"):
        parse_as('{"score": 0.5,', Verdict)
    with pytest.raises(InvalidOutput, match="side"):
        parse_as('{"score": 0.5, "side": "MAYBE", "reason": ""}', Verdict)


def test_role_settings_reference_unknown_providers_are_refused():
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        LLMSettings(roles={"fast": RoleSettings(chain=[RoleTarget(provider="nope", model="m")])})


def test_profiles_map_roles_to_reference_or_embedded_models():
    embedded = LLMSettings().role("reasoning")
    assert [(t.provider, t.model) for t in embedded.chain] == [("llamacpp", "SmolLM2-135M-Instruct")]
    ollama = LLMSettings(profile="ollama").role("reasoning")
    assert [(t.provider, t.model) for t in ollama.chain] == [
        ("ollama", "deepseek-r1:8b"),
        ("llamacpp", "SmolLM2-135M-Instruct"),
    ]


def test_unknown_role_is_a_clear_error():
    from sorte.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown LLM role 'oracle'"):
        LLMSettings().role("oracle")
