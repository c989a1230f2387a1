"""Structured output: text answers to validated pydantic objects."""

from __future__ import annotations

import functools
import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from sorte.llm.errors import InvalidOutput

T = TypeVar("T", bound=BaseModel)
THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def strip_thinking(text: str) -> str:
    """Remove reasoning models' ``<think>...</think>`` blocks (an unclosed one runs to the end)."""
    return THINK.sub("", text).strip()


def extract_json(text: str) -> str:
    """The JSON object in an answer: the whole text, a fenced block, or the first {...} span."""
    text = strip_thinking(text)
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.startswith("{"):
        return text
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise InvalidOutput(f"no JSON object in the answer: {text[:120]!r}")
    return text[start : end + 1]


def parse_as(text: str, model: type[T]) -> T:
    """Validate an answer against ``model`` or raise InvalidOutput saying what is wrong."""
    raw = extract_json(text)
    try:
        return model.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"answer is not valid JSON ({exc.msg} at {exc.pos}): {raw[:120]!r}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise InvalidOutput(f"answer does not match {model.__name__}: {problems}") from None


def schema_of(model: type[BaseModel]) -> dict:
    """The model's JSON schema, built once per model (building it costs about 0.4 ms, 80 %
    of a cached answer); a fresh copy each time, so no caller can change the cached one."""
    return json.loads(_schema_text(model))


@functools.cache
def _schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())
