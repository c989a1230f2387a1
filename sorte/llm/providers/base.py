"""The interface every LLM backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sorte.config import ProviderSettings


@dataclass(slots=True)
class Completion:
    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None


@dataclass
class Health:
    reachable: bool
    detail: str
    models: list[str] = field(default_factory=list)
    gpu: str = "unknown"


class Provider(Protocol):
    name: str
    settings: ProviderSettings

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        """One chat completion. Raises LLMUnavailable, ModelMissing, LLMTimeout or InvalidOutput."""
        ...

    async def health(self) -> Health: ...

    async def close(self) -> None: ...
