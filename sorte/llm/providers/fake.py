"""Scripted answers, for tests and deterministic replays. Each call takes the next answer of
the script (the last one repeats) or asks a function; an answer may be an exception to
raise, and ``delay_s`` simulates a slow backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sorte.config import ProviderSettings
from sorte.llm.providers.base import Completion, Health

Script = list[str | Exception] | Callable[[str, list[dict[str, str]]], str]


class FakeProvider:
    def __init__(
        self, name: str, settings: ProviderSettings, script: Script | None = None, delay_s: float = 0.0
    ) -> None:
        self.name, self.settings = name, settings
        if script is None and settings.model_path is not None:
            script = _load_script(settings.model_path)
        self.script: Script = script if script is not None else []
        self.delay_s = delay_s
        self.calls: list[tuple[str, list[dict[str, str]], dict[str, Any] | None]] = []

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        self.calls.append((model, messages, schema))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if callable(self.script):
            answer: str | Exception = self.script(model, messages)
        elif self.script:
            answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        else:
            answer = '{"score": 0.5, "side": "HOLD", "reason": "fake provider without a script"}'
        if isinstance(answer, Exception):
            raise answer
        return Completion(answer, sum(len(m["content"].split()) for m in messages), len(answer.split()))

    async def health(self) -> Health:
        return Health(True, "scripted answers", ["fake"], "n/a")

    async def close(self) -> None:
        return None


def _load_script(path: Path) -> Script:
    """A JSON list of answers (strings, or objects serialised as the answer text), taken in
    order; or a JSON object mapping a text that the prompt contains to its answer, so that a
    process that restarts gets the same answer for the same question."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        answers = {key: a if isinstance(a, str) else json.dumps(a) for key, a in data.items()}

        def by_prompt(_model: str, messages: list[dict[str, str]]) -> str:
            text = "\n".join(m["content"] for m in messages)
            for key, answer in answers.items():
                if key in text:
                    return answer
            raise ValueError(f"fake provider: no scripted answer matches the prompt ({text[:80]!r}...)")

        return by_prompt
    return [a if isinstance(a, str) else json.dumps(a) for a in data]
