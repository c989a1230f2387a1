"""Ollama through langchain-ollama, with the JSON schema passed as Ollama's ``format``
(constrained decoding on the server)."""

from __future__ import annotations

from typing import Any

import httpx
import ollama
from langchain_ollama import ChatOllama

from sorte.config import ProviderSettings
from sorte.llm.errors import LLMTimeout, LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health


class OllamaProvider:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name, self.settings = name, settings
        self.base_url = settings.base_url or "http://localhost:11434"

    def _chat(self, model: str, schema: dict[str, Any] | None, max_tokens: int) -> ChatOllama:
        timeout = {"timeout": self.settings.timeout_s}
        return ChatOllama(
            model=model,
            base_url=self.base_url,
            format=schema or None,
            temperature=0.0,
            num_predict=max_tokens,
            client_kwargs=timeout,
            async_client_kwargs=timeout,
            validate_model_on_init=False,
        )

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        chat = self._chat(model, schema, max_tokens)
        try:
            answer = await chat.ainvoke([(m["role"], m["content"]) for m in messages])
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise ModelMissing(f"ollama at {self.base_url} has no model {model!r} (ollama pull {model})") from None
            raise LLMUnavailable(f"ollama error {exc.status_code}: {exc.error}") from None
        except httpx.TimeoutException:
            raise LLMTimeout(f"ollama did not answer within {self.settings.timeout_s:g}s") from None
        except (httpx.TransportError, ConnectionError) as exc:
            raise LLMUnavailable(f"ollama unreachable at {self.base_url}: {exc}") from None
        usage = answer.usage_metadata or {}
        return Completion(str(answer.content), usage.get("input_tokens"), usage.get("output_tokens"))

    async def health(self) -> Health:
        try:
            listing = await ollama.AsyncClient(host=self.base_url, timeout=5).list()
        except (httpx.HTTPError, ConnectionError, ollama.ResponseError) as exc:
            return Health(False, f"unreachable at {self.base_url}: {exc}")
        models = [m.model for m in listing.models if m.model]
        return Health(True, f"{len(models)} model(s) at {self.base_url}", models, "reported by ollama ps")

    async def close(self) -> None:
        return None
