"""``sorte doctor`` against the local fake Ollama and OpenAI-compatible servers
(tests/fake_llm_servers.py), through the real client libraries: reachability, models
present or missing, the one-token call, GPU use read after the pings, a server that is
down, the embeddings role, and the cache's cumulative statistics and lookup self-test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_llm_servers import FakeOllama, FakeOpenAI
from pydantic import BaseModel
from typer.testing import CliRunner

from knowledge.settings import KnowledgeSettings
from sorte.config import LLMSettings, ProviderSettings, RoleSettings, RoleTarget
from sorte.llm.client import LLM
from sorte.llm.doctor import DoctorReport, diagnose, summary_lines

pytestmark = pytest.mark.timeout(60)

OLLAMA_PRESENT, OPENAI_PRESENT = "mistral:7b-instruct-q4_K_M", "qwen2.5-coder-7b-instruct"


class Verdict(BaseModel):
    score: float
    side: str
    reason: str


@pytest.fixture()
def servers() -> Iterator[tuple[FakeOllama, FakeOpenAI]]:
    ollama_server, openai_server = FakeOllama().start(), FakeOpenAI().start()
    try:
        yield ollama_server, openai_server
    finally:
        ollama_server.stop()
        openai_server.stop()


def llm_settings(ollama_url: str, openai_url: str) -> LLMSettings:
    def role(provider: str, model: str) -> RoleSettings:
        return RoleSettings(chain=[RoleTarget(provider=provider, model=model)])

    return LLMSettings(
        providers={
            "ollama": ProviderSettings(kind="ollama", base_url=ollama_url, timeout_s=5),
            "openai": ProviderSettings(kind="openai", base_url=openai_url, timeout_s=5),
        },
        roles={
            "fast": role("ollama", OLLAMA_PRESENT),
            "standard": role("ollama", "not-pulled:7b"),
            "reasoning": role("openai", OPENAI_PRESENT),
            "coder": role("openai", "not-served"),
            "sentiment": role("ollama", OLLAMA_PRESENT),
        },
    )


def run_doctor(settings: LLMSettings, cache: Path | None = None, **kw) -> DoctorReport:
    async def go() -> DoctorReport:
        llm = LLM(settings, cache)
        try:
            return await diagnose(settings, llm, timeout_s=10, **kw)
        finally:
            await llm.close()

    return asyncio.run(go())


def test_doctor_reports_backends_models_one_token_calls_and_gpu(servers):
    ollama_server, openai_server = servers
    report = run_doctor(llm_settings(ollama_server.url, openai_server.url))
    backends = {b.name: b for b in report.backends}
    assert backends["ollama"].reachable and OLLAMA_PRESENT in backends["ollama"].models
    assert backends["openai"].reachable and OPENAI_PRESENT in backends["openai"].models
    roles = {r.role: r for r in report.roles}
    assert set(roles) == {"fast", "standard", "reasoning", "coder", "sentiment"}  # embeddings is no chat role
    for present in ("fast", "reasoning", "sentiment"):
        r = roles[present]
        assert r.model_present is True and r.one_token_s is not None and r.one_token_s > 0 and r.error is None
    for missing in ("standard", "coder"):
        r = roles[missing]
        assert r.model_present is False and r.one_token_s is None and "not" in r.error
    assert "ollama pull not-pulled:7b" in roles["standard"].error
    # the pings reached the servers with one token asked for
    assert any(body.get("options", {}).get("num_predict") == 1 for body in ollama_server.chat_requests())
    assert any(
        body.get("max_tokens") == 1 or body.get("max_completion_tokens") == 1 for body in openai_server.chat_requests()
    )
    # read after the pings loaded the model, not before ("unknown (no model loaded)")
    assert backends["ollama"].gpu == "yes (100% of 1 loaded model(s) in VRAM)"
    assert backends["openai"].gpu == "not reported by the API"


def test_gpu_use_on_the_cpu_and_without_pings(servers):
    ollama_server, openai_server = servers
    settings = llm_settings(ollama_server.url, openai_server.url)
    quiet = run_doctor(settings, ping=False)
    assert next(b for b in quiet.backends if b.name == "ollama").gpu == "unknown (no model loaded)"
    assert all(r.error == "not pinged" and r.one_token_s is None for r in quiet.roles)
    ollama_server.vram_fraction = 0.0
    pinged = run_doctor(settings)
    assert next(b for b in pinged.backends if b.name == "ollama").gpu == "no (CPU)"


def test_doctor_with_a_server_down(servers):
    ollama_server, openai_server = servers
    settings = llm_settings(ollama_server.url, openai_server.url)
    ollama_server.stop()
    report = run_doctor(settings)
    backends = {b.name: b for b in report.backends}
    assert not backends["ollama"].reachable and "unreachable" in backends["ollama"].detail
    assert backends["openai"].reachable
    roles = {r.role: r for r in report.roles}
    assert roles["fast"].error == "backend unreachable" and roles["fast"].one_token_s is None
    assert roles["fast"].model_present is None
    assert roles["reasoning"].one_token_s is not None


def test_doctor_shows_cumulative_cache_statistics_and_times_lookups(servers, tmp_path):
    ollama_server, openai_server = servers
    settings = llm_settings(ollama_server.url, openai_server.url)
    cache = tmp_path / "cache.db"
    empty = run_doctor(settings, cache, ping=False)
    assert empty.lookup is None and "cache lookup latency: no entries to time" in summary_lines(empty)

    async def earlier_process() -> None:  # a runtime that asked twice, then exited
        llm = LLM(settings, cache)
        messages = [{"role": "user", "content": "BTC?"}]
        try:
            assert (await llm.ask("fast", messages, Verdict)).cache == "miss"
            assert (await llm.ask("fast", messages, Verdict)).cache == "hit-memory"
        finally:
            await llm.close()

    asyncio.run(earlier_process())
    report = run_doctor(settings, cache, ping=False)
    c = report.cache
    assert (c.total_memory_hits, c.total_disk_hits, c.total_misses, c.total_hit_rate) == (1, 0, 1, 0.5)
    assert c.disk_entries == 1 and c.disk_bytes > 0 and c.since is not None
    assert report.lookup is not None and report.lookup.entries == 1 and report.lookup.disk_p99_us > 0
    text = "\n".join(summary_lines(report))
    assert "cache: 1 hits (1 memory, 0 disk), 1 misses, hit rate 50% since 20" in text
    assert "1 entries" in text and "cache lookup latency (1 entries): disk p50" in text
    # the self-test lookups are not counted
    assert run_doctor(settings, cache, ping=False).cache.total_misses == 1


@pytest.mark.parametrize("pulled", [True, False])
def test_embeddings_role_is_knowledges_embedder_not_a_chat_model(servers, pulled):
    ollama_server, openai_server = servers
    if not pulled:
        ollama_server.models = [OLLAMA_PRESENT]
    else:
        ollama_server.models = [OLLAMA_PRESENT, "all-minilm:latest"]
    settings = llm_settings(ollama_server.url, openai_server.url)
    knowledge = KnowledgeSettings(embedder="ollama", ollama_base_url=ollama_server.url)
    report = run_doctor(settings, ping=False, knowledge=knowledge)
    e = report.embeddings
    assert (e.embedder, e.model, e.model_present) == ("ollama", "all-minilm", pulled)
    line = summary_lines(report)[0]
    assert line.startswith("embeddings (knowledge's embedder, not a chat model): ollama all-minilm")
    in_process = run_doctor(settings, ping=False, knowledge=KnowledgeSettings()).embeddings
    assert (in_process.embedder, in_process.model, in_process.where) == ("minilm", "all-MiniLM-L6-v2", "in process")
    assert "SmolLM2" not in "\n".join(summary_lines(report))


def test_sorte_doctor_command(settings, servers, monkeypatch):
    from sorte.cli.main import app

    ollama_server, openai_server = servers
    llm = llm_settings(ollama_server.url, openai_server.url)
    monkeypatch.setenv(
        "SORTE_LLM__PROVIDERS", json.dumps({k: v.model_dump(mode="json") for k, v in llm.providers.items()})
    )
    monkeypatch.setenv("SORTE_LLM__ROLES", json.dumps({k: v.model_dump(mode="json") for k, v in llm.roles.items()}))
    result = CliRunner().invoke(app, ["doctor", "--timeout", "10"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "yes (100% of 1 loaded model(s) in VRAM)" in out and "not reported by the API" in out
    assert "embeddings (knowledge's embedder, not a chat model): minilm all-MiniLM-L6-v2" in out
    assert "cache: 0 hits (0 memory, 0 disk), 0 misses" in out and "no entries to time" in out
