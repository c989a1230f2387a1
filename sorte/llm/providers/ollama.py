"""Ollama through langchain-ollama, with the JSON schema passed as Ollama's ``format``
(constrained decoding on the server).

``ChatOllama.ainvoke`` always streams (``"stream": true``, NDJSON lines) and aggregates the
pieces. Every failure of the client libraries is mapped to the layer's typed errors, so
the client can fall back: a model that is not pulled -> ModelMissing, no answer within the
timeout -> LLMTimeout, a server that is down, answers with an error or sends a body the
client cannot read (not JSON, cut short, not Ollama's shape) -> LLMUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import httpx
import ollama
from langchain_ollama import ChatOllama

from sorte.config import ProviderSettings
from sorte.llm.errors import LLMTimeout, LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health

# What the ollama client and langchain-ollama raise on a body they cannot read: json.loads
# on a line that is not JSON (ValueError), a line that is JSON but not a chat response
# (pydantic's ValidationError is a ValueError; a list has no .get: AttributeError), an
# empty stream ("No data received from Ollama stream.": ValueError).
MALFORMED = (ValueError, TypeError, LookupError, AttributeError)


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
            if exc.status_code == 404 and "model" in str(exc.error).lower():
                raise ModelMissing(f"ollama at {self.base_url} has no model {model!r} (ollama pull {model})") from None
            if exc.status_code == 404:  # not Ollama's "model not found": the URL is not an Ollama API
                raise LLMUnavailable(
                    f"{self.base_url} answered 404 {exc.error!r}: is base_url an Ollama server?"
                ) from None
            if exc.status_code == -1:  # an {"error": ...} line in the middle of the stream
                raise LLMUnavailable(f"ollama at {self.base_url} failed while answering: {exc.error}") from None
            raise LLMUnavailable(f"ollama at {self.base_url} answered HTTP {exc.status_code}: {exc.error}") from None
        except httpx.TimeoutException:
            raise LLMTimeout(f"ollama did not answer within {self.settings.timeout_s:g}s") from None
        except (httpx.RequestError, ConnectionError) as exc:
            raise LLMUnavailable(f"ollama unreachable at {self.base_url}: {exc}") from None
        except MALFORMED as exc:
            raise LLMUnavailable(
                f"malformed response from ollama at {self.base_url} ({type(exc).__name__}: {_short(exc)})"
            ) from None
        finally:
            await _close(getattr(chat, "_async_client", None))
        usage: Mapping[str, Any] = answer.usage_metadata or {}
        return Completion(str(answer.content), usage.get("input_tokens"), usage.get("output_tokens"))

    async def health(self) -> Health:
        client = ollama.AsyncClient(host=self.base_url, timeout=5)
        try:
            listing = await client.list()
            loaded = await client.ps()
        except (httpx.HTTPError, ConnectionError, ollama.ResponseError) as exc:
            return Health(False, f"unreachable at {self.base_url}: {exc}")
        except MALFORMED as exc:
            return Health(False, f"not an ollama server at {self.base_url} ({type(exc).__name__}: {_short(exc)})")
        finally:
            await _close(client)
        models = [m.model for m in listing.models if m.model]
        return Health(True, f"{len(models)} model(s) at {self.base_url}", models, _gpu(loaded))

    async def close(self) -> None:
        return None


def _gpu(loaded: ollama.ProcessResponse) -> str:
    """What ``ollama ps`` says of the loaded models: how much of them sits in GPU memory."""
    running = [(m.model, m.size or 0, m.size_vram or 0) for m in loaded.models]
    if not running:
        return "unknown (no model loaded)"
    in_vram = sum(v for _, _, v in running)
    total = sum(s for _, s, _ in running)
    if in_vram == 0:
        return "no (CPU)"
    return f"yes ({100 * in_vram / total:.0f}% of {len(running)} loaded model(s) in VRAM)" if total else "yes"


async def _close(client: ollama.AsyncClient | None) -> None:
    """Close the per-call HTTP client: its connection would otherwise stay open until the
    garbage collector finds it (an "unclosed transport" ResourceWarning)."""
    if client is not None:
        with contextlib.suppress(Exception):
            await client.close()


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else "no detail"
