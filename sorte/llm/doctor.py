"""``sorte doctor``: which LLM backends answer, which models they have, whether a GPU is
used where the backend can say, how long a one-token call takes, which embedder the
``embeddings`` role is, and the response cache's cumulative statistics with a lookup
latency self-test."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from pydantic import BaseModel

from knowledge.settings import MINILM_MODEL, KnowledgeSettings
from sorte.config import ROLES, LLMSettings
from sorte.llm.cache import CacheStats, LookupTiming
from sorte.llm.client import LLM
from sorte.llm.errors import LLMError

PING = [{"role": "user", "content": "Reply with the word OK."}]


class BackendReport(BaseModel):
    name: str
    kind: str
    reachable: bool
    detail: str
    models: list[str]
    gpu: str


class RoleReport(BaseModel):
    role: str
    backend: str
    model: str
    model_present: bool | None
    one_token_s: float | None
    error: str | None


class EmbeddingsReport(BaseModel):
    """The ``embeddings`` role is knowledge's embedder, not a chat model: no one-token call."""

    embedder: str  # "minilm" (in process) | "ollama"
    model: str
    where: str
    model_present: bool | None
    detail: str


class DoctorReport(BaseModel):
    backends: list[BackendReport]
    roles: list[RoleReport]
    cache: CacheStats
    lookup: LookupTiming | None  # None: no entries to time
    embeddings: EmbeddingsReport | None = None


async def diagnose(
    settings: LLMSettings,
    llm: LLM,
    ping: bool = True,
    timeout_s: float = 60.0,
    knowledge: KnowledgeSettings | None = None,
) -> DoctorReport:
    backends = [await _backend(name, provider, timeout_s) for name, provider in llm.providers.items()]
    by_name = {b.name: b for b in backends}
    roles = [await _role(settings, llm, role, by_name, ping, timeout_s) for role in ROLES if role != "embeddings"]
    if ping:  # what runs on the GPU is known once the pings have loaded the models
        for b in backends:
            if b.reachable:
                again = await _backend(b.name, llm.providers[b.name], timeout_s)
                if again.reachable:
                    b.gpu = again.gpu
    return DoctorReport(
        backends=backends,
        roles=roles,
        cache=llm.cache.stats(),
        lookup=llm.cache.self_test(),
        embeddings=_embeddings(knowledge, llm, by_name) if knowledge is not None else None,
    )


async def _backend(name, provider, timeout_s) -> BackendReport:
    try:
        h = await asyncio.wait_for(provider.health(), timeout_s)
    except (TimeoutError, LLMError) as exc:
        return BackendReport(
            name=name,
            kind=provider.settings.kind,
            reachable=False,
            detail=str(exc) or "health check timed out",
            models=[],
            gpu="unknown",
        )
    return BackendReport(
        name=name, kind=provider.settings.kind, reachable=h.reachable, detail=h.detail, models=h.models, gpu=h.gpu
    )


def _present(model: str, models: list[str]) -> bool:
    return any(m == model or m.split(":")[0] == model for m in models)


async def _role(settings, llm, role, backends, ping, timeout_s) -> RoleReport:
    target = settings.role(role).chain[0]
    backend = backends.get(target.provider)
    present = None
    if backend is not None and backend.reachable and backend.models and backend.kind in ("ollama", "openai"):
        present = _present(target.model, backend.models)
    report = RoleReport(
        role=role, backend=target.provider, model=target.model, model_present=present, one_token_s=None, error=None
    )
    provider = llm.providers.get(target.provider)
    if not ping or provider is None or (backend is not None and not backend.reachable):
        report.error = None if ping else "not pinged"
        if provider is None:
            report.error = f"no provider {target.provider!r} configured"
        elif backend is not None and not backend.reachable:
            report.error = "backend unreachable"
        return report
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(provider.complete(target.model, PING, None, 1), timeout_s)
        report.one_token_s = round(time.perf_counter() - t0, 4)
    except (TimeoutError, LLMError) as exc:
        report.error = str(exc) or f"no answer within {timeout_s:g}s"
    return report


def _embeddings(knowledge: KnowledgeSettings, llm: LLM, backends: dict[str, BackendReport]) -> EmbeddingsReport:
    """What knowledge embeds with (its settings decide, as ``sorte lessons`` does)."""
    if knowledge.embedder == "ollama":
        url = knowledge.ollama_base_url
        same = [
            b
            for b in backends.values()
            if b.kind == "ollama"
            and b.reachable
            and _host(getattr(llm.providers[b.name], "base_url", "")) == _host(url)
        ]
        return EmbeddingsReport(
            embedder="ollama",
            model=knowledge.ollama_model,
            where=url,
            model_present=_present(knowledge.ollama_model, same[0].models) if same else None,
            detail="" if same else "no reachable ollama backend at this URL was checked",
        )
    from knowledge.embeddings import bundled_minilm_dir
    from knowledge.errors import KnowledgeError

    try:
        folder = knowledge.minilm_model_dir or bundled_minilm_dir()
        present, detail = (folder / "model.safetensors").is_file(), str(folder)
    except KnowledgeError as exc:
        present, detail = False, str(exc)
    return EmbeddingsReport(
        embedder="minilm", model=MINILM_MODEL, where="in process", model_present=present, detail=detail
    )


def _host(url: str) -> str:
    """host:port of a URL, localhost spelled 127.0.0.1."""
    netloc = urlsplit(url).netloc or url
    return netloc.replace("localhost", "127.0.0.1")


def summary_lines(report: DoctorReport) -> list[str]:
    """The lines of ``sorte doctor`` under its tables: the embeddings role's embedder, the
    cache's cumulative counts since the store began, and lookup latency timed now over
    stored entries."""
    lines = []
    if report.embeddings is not None:
        e = report.embeddings
        present = "-" if e.model_present is None else ("yes" if e.model_present else "no")
        lines.append(
            f"embeddings (knowledge's embedder, not a chat model): {e.embedder} {e.model} ({e.where}), "
            f"model present: {present}" + (f" - {e.detail}" if e.detail else "")
        )
    c = report.cache
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(c.since)) if c.since else "this process"
    hits = c.total_memory_hits + c.total_disk_hits
    lines += [
        f"cache: {hits} hits ({c.total_memory_hits} memory, {c.total_disk_hits} disk), {c.total_misses} misses, "
        f"hit rate {c.total_hit_rate:.0%} since {since}; "
        f"{c.disk_entries} entries, {c.disk_bytes / 2**20:.1f} MiB on disk"
    ]
    t = report.lookup
    if t is None:
        lines.append("cache lookup latency: no entries to time")
    else:

        def pair(p50, p99):
            return "-" if p50 is None else f"p50 {p50:.1f} us p99 {p99:.1f} us"

        lines.append(
            f"cache lookup latency ({t.entries} entries): disk {pair(t.disk_p50_us, t.disk_p99_us)}, "
            f"memory {pair(t.memory_p50_us, t.memory_p99_us)}"
        )
    return lines
