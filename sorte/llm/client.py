"""The LLM client: roles -> fallback chains of (provider, model), with structured output,
per-call timeouts, a two-level response cache, per-backend concurrency limits and one
structured log line per call.

    llm = LLM(settings.llm, cache_path)
    answer = await llm.ask("standard", messages, StageVerdict, stage="technical")
    answer.value  # a validated StageVerdict
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel

from sorte.config import LLMSettings, ProviderSettings
from sorte.llm.cache import ResponseCache, cache_key
from sorte.llm.errors import InvalidOutput, LLMError, LLMTimeout, ReplayMiss
from sorte.llm.providers.base import Provider
from sorte.llm.structured import parse_as, schema_of

log = structlog.get_logger("sorte.llm")
T = TypeVar("T", bound=BaseModel)


@dataclass
class Answer(Generic[T]):
    value: T
    role: str
    backend: str
    model: str
    latency_s: float
    cache: str  # "hit-memory" | "hit-disk" | "miss" | "bypass"
    fallbacks: list[str] = field(default_factory=list)  # "backend:model: reason" of each failed target
    tokens_in: int | None = None
    tokens_out: int | None = None


class AllBackendsFailed(LLMError):
    """Every target of the role's chain failed; ``reasons`` says why, in order, and
    ``reason`` is the short cause for logs and metrics (``timeout``, ``unavailable``,
    ``model_missing``, ``invalid_output``; several joined by "+" when the targets failed
    differently)."""

    def __init__(self, role: str, reasons: list[str], causes: list[str] | None = None) -> None:
        super().__init__(f"role {role!r}: every backend failed: " + "; ".join(reasons))
        self.reasons = reasons
        self.causes = causes or ["error"]
        self.reason = "+".join(dict.fromkeys(self.causes))


@dataclass(frozen=True)
class ReplayMissing:
    """One question that replay mode could not answer from the cache."""

    stage: str
    role: str
    symbol: str
    bar_ts: float | None  # epoch seconds of the bar asked about, when the caller said
    key: str  # cache key of the chain's first target
    models: tuple[str, ...]


def replay_report(misses: list[ReplayMissing], shown: int = 10) -> str:
    """What replay mode lacks, per stage and symbol: a count, the first ``shown`` bars with a
    key prefix each, and "... and N more"."""
    groups: dict[tuple[str, str, str, tuple[str, ...]], list[ReplayMissing]] = {}
    for m in misses:
        groups.setdefault((m.stage, m.symbol, m.role, m.models), []).append(m)
    lines = [
        f"replay mode: {len(misses)} LLM answer(s) are not in the cache, so this backtest cannot be replayed "
        f"(run it once without --replay to record them):"
    ]
    for (stage, symbol, role, models), items in groups.items():
        items = sorted(items, key=lambda m: (m.bar_ts is None, m.bar_ts or 0.0))
        bars = ", ".join(f"{_when(m.bar_ts)} [{m.key[:8]}]" for m in items[:shown])
        more = f", ... and {len(items) - shown} more" if len(items) > shown else ""
        lines.append(
            f"  stage={stage or '-'} symbol={symbol or '-'} role={role} models={','.join(models)}: "
            f"{len(items)} bar(s) missing: {bars}{more}"
        )
    return "\n".join(lines)


def _when(ts: float | None) -> str:
    if ts is None:
        return "bar ?"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_provider(name: str, settings: ProviderSettings) -> Provider:
    if settings.kind == "ollama":
        from sorte.llm.providers.ollama import OllamaProvider

        return OllamaProvider(name, settings)
    if settings.kind == "openai":
        from sorte.llm.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(name, settings)
    if settings.kind == "llamacpp":
        from sorte.llm.providers.llamacpp import LlamaCppProvider

        return LlamaCppProvider(name, settings)
    from sorte.llm.providers.fake import FakeProvider

    return FakeProvider(name, settings)


class _CacheCollector(Collector):
    """Cache statistics read at scrape time (hit rate, sizes, lookup latency)."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def collect(self):
        st = self.cache.stats()
        for name, doc, value in (
            ("sorte_llm_cache_hit_ratio", "Cache hits / lookups", st.hit_rate),
            ("sorte_llm_cache_memory_entries", "Answers in the in-memory LRU", st.memory_entries),
            ("sorte_llm_cache_disk_entries", "Answers in the disk store", st.disk_entries),
            ("sorte_llm_cache_disk_bytes", "Bytes in the disk store", st.disk_bytes),
            ("sorte_llm_cache_lookup_p50_seconds", "Median lookup time", st.lookup_p50_us / 1e6),
            ("sorte_llm_cache_lookup_p99_seconds", "99th percentile lookup time", st.lookup_p99_us / 1e6),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


class LLMMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "sorte_llm_calls_total", "LLM calls by outcome", ["role", "backend", "outcome"], registry=r
        )
        self.latency = Histogram(
            "sorte_llm_latency_seconds",
            "LLM answer time",
            ["backend"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.cache = Counter("sorte_llm_cache_total", "Cache lookups", ["result"], registry=r)
        self.fallbacks = Counter("sorte_llm_fallbacks_total", "Fallbacks taken", ["role", "reason"], registry=r)


class LLM:
    def __init__(
        self,
        settings: LLMSettings,
        cache_path: Path | None = None,
        providers: dict[str, Provider] | None = None,
        metrics: LLMMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.providers = (
            providers
            if providers is not None
            else {name: build_provider(name, p) for name, p in settings.providers.items()}
        )
        self.cache = ResponseCache(cache_path, settings.cache_max_entries, int(settings.cache_max_disk_mb * 2**20))
        self.metrics = metrics or LLMMetrics()
        self.metrics.registry.register(_CacheCollector(self.cache))
        # Per event loop: asyncio primitives bind to the loop that first uses them, and a
        # backtest or CLI command may run several loops one after the other.
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.replay_misses: list[ReplayMissing] = []

    async def close(self) -> None:
        self.cache.close()
        for p in self.providers.values():
            await p.close()

    async def ask(
        self,
        role: str,
        messages: list[dict[str, str]],
        schema: type[T],
        *,
        stage: str = "",
        bypass_cache: bool = False,
        retries: int = 1,
        symbol: str = "",
        bar_ts: float | None = None,
    ) -> Answer[T]:
        """A validated ``schema`` instance: from the cache if any target of ``role`` answered this
        before, else from the first target of the chain that gives one. ``symbol`` and
        ``bar_ts`` (the bar asked about) only label replay misses."""
        role_cfg = self.settings.role(role)
        targets = [(self.providers.get(t.provider), t.provider, t.model) for t in role_cfg.chain]
        schema_json = schema_of(schema)
        params = {"max_tokens": role_cfg.max_tokens, "temperature": 0.0}
        keys = [
            cache_key(p.settings.kind if p else name, model, messages, params, schema_json)
            for p, name, model in targets
        ]
        if not bypass_cache:  # one lookup per ask: a hit if any target's answer is cached
            t0 = time.perf_counter()
            hit = self.cache.lookup(keys)
            self.metrics.cache.labels("hit" if hit else "miss").inc()
            if hit is not None:
                _, name, model = targets[hit[2]]
                return self._done(parse_as(hit[0], schema), role, stage, name, model, t0, f"hit-{hit[1]}", None, None)
        if self.settings.replay:
            self.replay_misses.append(
                ReplayMissing(stage, role, symbol, bar_ts, keys[0], tuple(m for _, _, m in targets))
            )
            raise ReplayMiss(f"replay mode: no cached answer for role {role!r} (stage {stage or '-'})")
        reasons: list[str] = []
        causes: list[str] = []  # short reason of each failed target, in order
        tried: list[str] = []  # names of the failed targets
        for i, ((provider, name, model), key) in enumerate(zip(targets, keys, strict=True)):
            nxt = next((n for _, n, _ in targets[i + 1 :]), None)
            if provider is None:
                reasons.append(f"{name}: not configured")
                causes.append("not_configured")
                tried.append(name)
                continue
            timeout = role_cfg.timeout_s or provider.settings.timeout_s
            try:
                answer = await self._call(
                    provider,
                    model,
                    role,
                    messages,
                    schema,
                    schema_json,
                    stage,
                    timeout,
                    role_cfg.max_tokens,
                    key,
                    retries,
                    role_cfg.cache_ttl_s,
                    bypass_cache,
                    fallback=bool(tried),
                )
            except Exception as exc:  # noqa: BLE001 - any backend failure moves on along the chain
                reason = _reason(exc)
                reasons.append(f"{name}:{model}: {exc}")
                causes.append(reason)
                tried.append(name)
                self.metrics.fallbacks.labels(role, reason).inc()
                log.warning(
                    f"[LLM] {name} {_failure(reason, timeout, model)}: "
                    + (f"falling back to {nxt}" if nxt else "no fallback left"),
                    role=role,
                    stage=stage,
                    backend=name,
                    model=model,
                    reason=reason,
                    error=str(exc),
                    **({"timeout_s": timeout} if reason == "timeout" else {}),
                )
                continue
            answer.fallbacks = reasons
            if tried:  # the success line said which fallback was taken and why
                self._log_done(answer, stage, fallback="->".join([*tried, name]), fallback_reason="+".join(causes))
            return answer
        raise AllBackendsFailed(role, reasons, causes)

    async def _call(
        self,
        provider: Provider,
        model: str,
        role: str,
        messages: list[dict[str, str]],
        schema: type[T],
        schema_json: dict,
        stage: str,
        timeout: float,
        max_tokens: int,
        key: str,
        retries: int,
        ttl: float,
        bypass: bool,
        fallback: bool = False,
    ) -> Answer[T]:
        """``fallback``: an earlier target failed, so the caller logs the line (with why)."""
        t0 = time.perf_counter()
        convo = list(messages)
        for attempt in range(retries + 1):
            try:  # the timeout covers the wait for a free slot on the backend too
                done = await asyncio.wait_for(self._complete(provider, model, convo, schema_json, max_tokens), timeout)
            except TimeoutError:
                self.metrics.calls.labels(role, provider.name, "timeout").inc()
                raise LLMTimeout(f"no answer within {timeout:g}s") from None
            try:
                value = parse_as(done.text, schema)
            except InvalidOutput as exc:
                self.metrics.calls.labels(role, provider.name, "invalid").inc()
                if attempt == retries:
                    raise
                # Give the model its own answer and the validation error, once more.
                convo = [
                    *convo,
                    {"role": "assistant", "content": done.text},
                    {"role": "user", "content": f"That answer was invalid: {exc}. Reply with JSON only."},
                ]
                continue
            self.cache.put(key, value.model_dump_json(), role, ttl)
            self.metrics.calls.labels(role, provider.name, "ok").inc()
            return self._done(
                value,
                role,
                stage,
                provider.name,
                model,
                t0,
                "bypass" if bypass else "miss",
                done.tokens_in,
                done.tokens_out,
                log_it=not fallback,
            )
        raise AssertionError("unreachable")

    async def _complete(
        self, provider: Provider, model: str, messages: list[dict[str, str]], schema_json: dict, max_tokens: int
    ):
        per_loop = self._semaphores.setdefault(asyncio.get_running_loop(), {})
        if provider.name not in per_loop:
            per_loop[provider.name] = asyncio.Semaphore(provider.settings.concurrency)
        async with per_loop[provider.name]:
            return await provider.complete(model, messages, schema_json, max_tokens)

    def _done(
        self,
        value: T,
        role: str,
        stage: str,
        backend: str,
        model: str,
        t0: float,
        cache: str,
        tokens_in: int | None,
        tokens_out: int | None,
        log_it: bool = True,
    ) -> Answer[T]:
        latency = time.perf_counter() - t0
        self.metrics.latency.labels(backend).observe(latency)
        answer = Answer(value, role, backend, model, latency, cache, [], tokens_in, tokens_out)
        if log_it:
            self._log_done(answer, stage)
        return answer

    @staticmethod
    def _log_done(answer: Answer, stage: str, fallback: str | None = None, fallback_reason: str | None = None) -> None:
        """The call's one line: ``[LLM] stage=technical backend=llamacpp model=m 1.45s cache=miss``,
        and after a fallback `` fallback=ollama->llamacpp reason=timeout``."""
        text = (
            f"[LLM] stage={stage or '-'} backend={answer.backend} model={answer.model} "
            f"{answer.latency_s:.2f}s cache={answer.cache}"
        )
        extra = {}
        if fallback:
            text += f" fallback={fallback} reason={fallback_reason}"
            extra = {"fallback": fallback, "fallback_reason": fallback_reason}
        log.info(
            text,
            role=answer.role,
            stage=stage,
            backend=answer.backend,
            model=answer.model,
            latency_s=round(answer.latency_s, 4),
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            cache=answer.cache,
            **extra,
        )

    async def ask_json(self, role: str, messages: list[dict[str, str]], schema: type[T], **kw) -> T:
        return (await self.ask(role, messages, schema, **kw)).value


def _reason(exc: Exception) -> str:
    """The short cause of a target's failure: ``timeout``, ``unavailable``, ``model_missing``,
    ``invalid_output``, or ``error`` for anything else."""
    return exc.reason if isinstance(exc, LLMError) else "error"


def _failure(reason: str, timeout: float, model: str) -> str:
    """The warning's words for a failed target (only a timeout names the timeout)."""
    return {
        "timeout": f"unavailable or slow (timeout {timeout:g}s)",
        "unavailable": "unavailable (unreachable or a broken answer)",
        "model_missing": f"does not have model {model}",
        "invalid_output": "gave no valid answer",
    }.get(reason, f"failed ({reason})")
