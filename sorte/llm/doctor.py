"""``sorte doctor``: which LLM backends answer, which models they have, whether a GPU is
used where the backend can say, how long a one-token call takes, and cache statistics."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from sorte.config import ROLES, LLMSettings
from sorte.llm.cache import CacheStats
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


class DoctorReport(BaseModel):
    backends: list[BackendReport]
    roles: list[RoleReport]
    cache: CacheStats


async def diagnose(settings: LLMSettings, llm: LLM, ping: bool = True, timeout_s: float = 60.0) -> DoctorReport:
    backends = []
    for name, provider in llm.providers.items():
        try:
            h = await asyncio.wait_for(provider.health(), timeout_s)
        except (TimeoutError, LLMError) as exc:
            backends.append(
                BackendReport(
                    name=name,
                    kind=provider.settings.kind,
                    reachable=False,
                    detail=str(exc) or "health check timed out",
                    models=[],
                    gpu="unknown",
                )
            )
            continue
        backends.append(
            BackendReport(
                name=name,
                kind=provider.settings.kind,
                reachable=h.reachable,
                detail=h.detail,
                models=h.models,
                gpu=h.gpu,
            )
        )
    by_name = {b.name: b for b in backends}
    roles = [await _role(settings, llm, role, by_name, ping, timeout_s) for role in ROLES if role != "embeddings"]
    return DoctorReport(backends=backends, roles=roles, cache=llm.cache.stats())


async def _role(settings, llm, role, backends, ping, timeout_s) -> RoleReport:
    target = settings.role(role).chain[0]
    backend = backends.get(target.provider)
    present = None
    if backend is not None and backend.reachable and backend.models and backend.kind in ("ollama", "openai"):
        present = any(m == target.model or m.split(":")[0] == target.model for m in backend.models)
    report = RoleReport(
        role=role, backend=target.provider, model=target.model, model_present=present, one_token_s=None, error=None
    )
    provider = llm.providers.get(target.provider)
    if not ping or provider is None or (backend is not None and not backend.reachable):
        report.error = None if ping else "not pinged"
        if backend is not None and not backend.reachable:
            report.error = "backend unreachable"
        return report
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(provider.complete(target.model, PING, None, 1), timeout_s)
        report.one_token_s = round(time.perf_counter() - t0, 3)
    except (TimeoutError, LLMError) as exc:
        report.error = str(exc) or f"no answer within {timeout_s:g}s"
    return report
