"""Any OpenAI-compatible server (llama.cpp server, vLLM, LiteLLM, OpenRouter) through
langchain-openai. Asks for ``response_format=json_schema``; servers that only know JSON
mode get the schema in the prompt and the answer is validated (and retried) by the client.

Each call gets its own ``openai.AsyncOpenAI`` client, closed when the call ends: the HTTP
client langchain-openai would otherwise share (cached per base URL and timeout) keeps
connections bound to the event loop that opened them, and the next ``asyncio.run`` that
reuses one fails with "Event loop is closed". Every failure of the client libraries is
mapped to the layer's typed errors so the client can fall back."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import openai
from langchain_openai import ChatOpenAI

from sorte.config import ProviderSettings
from sorte.llm.errors import InvalidOutput, LLMTimeout, LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health

# What the openai client and langchain-openai raise on a body they cannot read: not JSON
# (JSONDecodeError, a ValueError), JSON that is not a chat completion (null choices:
# ValueError, a message without content: pydantic's ValidationError, no choice at all:
# IndexError).
MALFORMED = (ValueError, TypeError, LookupError, AttributeError)


class _SchemaRefused(Exception):
    """The server does not take a json_schema response_format."""


class OpenAICompatProvider:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name, self.settings = name, settings
        self.base_url = settings.base_url or "http://localhost:8080/v1"
        self.json_mode = False  # set once the server refused a json_schema response_format
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"

    def _client(self, timeout: float) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=timeout, max_retries=0)

    def _chat(self, client: openai.AsyncOpenAI, model: str, schema: dict[str, Any] | None, max_tokens: int) -> Any:
        chat = ChatOpenAI(
            model=model,
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=self.settings.timeout_s,
            max_retries=0,
            temperature=0.0,
            max_tokens=max_tokens,
            root_async_client=client,
            async_client=client.chat.completions,
        )
        if schema is None:
            return chat
        if self.json_mode:
            return chat.bind(response_format={"type": "json_object"})
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
        return chat.bind(response_format=fmt)

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        try:
            return await self._complete(model, messages, schema, max_tokens)
        except _SchemaRefused:
            # JSON mode instead: the schema goes into the prompt, the client validates.
            self.json_mode = True
            hint = {"role": "system", "content": f"Reply with JSON matching this schema: {json.dumps(schema)}"}
            return await self._complete(model, [*messages, hint], schema, max_tokens)

    async def _complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        client = self._client(self.settings.timeout_s)
        chat = self._chat(client, model, schema, max_tokens)  # opens no connection yet
        try:
            answer = await chat.ainvoke([(m["role"], m["content"]) for m in messages])
        except openai.NotFoundError as exc:
            if "model" in str(exc).lower():
                raise ModelMissing(f"{self.base_url} has no model {model!r}") from None
            # A 404 that is not about the model: the base URL is wrong (a missing /v1, say).
            raise LLMUnavailable(f"{self.base_url} answered 404 ({_short(exc)}): is base_url right?") from None
        except openai.APITimeoutError:
            raise LLMTimeout(f"{self.base_url} did not answer within {self.settings.timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            cause = _root(exc)
            raise LLMUnavailable(
                f"OpenAI-compatible server unreachable at {self.base_url} ({type(cause).__name__}: {_short(cause)})"
            ) from None
        except openai.BadRequestError as exc:
            if schema is not None and not self.json_mode and "response_format" in str(exc):
                raise _SchemaRefused from None
            raise LLMUnavailable(f"{self.base_url} refused the request: {_short(exc)}") from None
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"{self.base_url} answered HTTP {exc.status_code}: {_short(exc)}") from None
        except openai.LengthFinishReasonError:  # only with response_format: the JSON was cut at max_tokens
            raise InvalidOutput(f"{self.base_url}: the answer hit the token limit ({max_tokens})") from None
        except openai.ContentFilterFinishReasonError:
            raise InvalidOutput(f"{self.base_url}: the answer was stopped by the server's content filter") from None
        except openai.OpenAIError as exc:  # anything else the client says is wrong with the exchange
            raise LLMUnavailable(f"{self.base_url}: {type(exc).__name__}: {_short(exc)}") from None
        except MALFORMED as exc:
            raise LLMUnavailable(
                f"malformed response from {self.base_url} ({type(exc).__name__}: {_short(exc)})"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await client.close()
        usage = answer.usage_metadata or {}
        return Completion(str(answer.content), usage.get("input_tokens"), usage.get("output_tokens"))

    async def health(self) -> Health:
        client = self._client(5)
        try:
            listing = await client.models.list()
            models = [m.id for m in listing.data]
        except openai.OpenAIError as exc:
            return Health(False, f"unreachable at {self.base_url}: {type(exc).__name__}")
        except MALFORMED as exc:
            return Health(
                False, f"not an OpenAI-compatible server at {self.base_url} ({type(exc).__name__}: {_short(exc)})"
            )
        finally:
            with contextlib.suppress(Exception):
                await client.close()
        return Health(True, f"{len(models)} model(s) at {self.base_url}", models, "not reported by the API")

    async def close(self) -> None:
        return None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else "no detail"


def _root(exc: BaseException) -> BaseException:
    """The innermost cause (the transport error under the client's wrappers)."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc
