"""Any OpenAI-compatible server (llama.cpp server, vLLM, LiteLLM, OpenRouter) through
langchain-openai. Asks for ``response_format=json_schema``; servers that only know JSON
mode get the schema in the prompt and the answer is validated (and retried) by the client."""

from __future__ import annotations

from typing import Any

import openai
from langchain_openai import ChatOpenAI

from sorte.config import ProviderSettings
from sorte.llm.errors import InvalidOutput, LLMTimeout, LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health


class OpenAICompatProvider:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name, self.settings = name, settings
        self.base_url = settings.base_url or "http://localhost:8080/v1"
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"

    def _chat(self, model: str, schema: dict[str, Any] | None, max_tokens: int) -> Any:
        chat = ChatOpenAI(
            model=model,
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=self.settings.timeout_s,
            max_retries=0,
            temperature=0.0,
            max_tokens=max_tokens,
        )
        if schema is None:
            return chat
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
        return chat.bind(response_format=fmt)

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        chat = self._chat(model, schema, max_tokens)
        try:
            answer = await chat.ainvoke([(m["role"], m["content"]) for m in messages])
        except openai.NotFoundError:
            raise ModelMissing(f"{self.base_url} has no model {model!r}") from None
        except openai.APITimeoutError:
            raise LLMTimeout(f"{self.base_url} did not answer within {self.settings.timeout_s:g}s") from None
        except openai.APIConnectionError:
            raise LLMUnavailable(f"OpenAI-compatible server unreachable at {self.base_url}") from None
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"{self.base_url} answered HTTP {exc.status_code}") from None
        except (ValueError, TypeError, KeyError) as exc:  # a body the client cannot read
            raise InvalidOutput(f"malformed answer from {self.base_url}: {exc}") from None
        usage = answer.usage_metadata or {}
        return Completion(str(answer.content), usage.get("input_tokens"), usage.get("output_tokens"))

    async def health(self) -> Health:
        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=5, max_retries=0)
        try:
            listing = await client.models.list()
        except openai.OpenAIError as exc:
            return Health(False, f"unreachable at {self.base_url}: {type(exc).__name__}")
        finally:
            await client.close()
        models = [m.id for m in listing.data]
        return Health(True, f"{len(models)} model(s) at {self.base_url}", models, "not reported by the API")

    async def close(self) -> None:
        return None
