"""Service functions of the LLM layer for the front-ends."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from sorte.config import Settings
from sorte.llm.client import LLM, LLMMetrics
from sorte.llm.doctor import DoctorReport, diagnose


def cache_path(settings: Settings):
    return settings.data_dir / "llm" / "cache.db"


def build_llm(settings: Settings, registry: CollectorRegistry | None = None) -> LLM:
    """The LLM client of these settings; its metrics join ``registry`` when given (the
    runtime's, so one /metrics endpoint shows both)."""
    return LLM(settings.llm, cache_path(settings), metrics=LLMMetrics(registry))


def doctor(settings: Settings, ping: bool = True, timeout_s: float = 60.0) -> DoctorReport:
    async def run() -> DoctorReport:
        llm = build_llm(settings)
        try:
            return await diagnose(settings.llm, llm, ping, timeout_s, knowledge=settings.knowledge)
        finally:
            await llm.close()

    return asyncio.run(run())
