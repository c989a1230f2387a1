"""llama.cpp in process through llama-cpp-python, with JSON-schema constrained decoding.

One model instance per file, loaded on first use (the cold start) and shared. llama.cpp
contexts are not thread-safe, so calls run one at a time in a worker thread; a call that
times out is reported at once while the thread finishes in the background and the next
call waits its turn (the router's timeout bounds that wait too)."""

from __future__ import annotations

import asyncio
import atexit
import threading
from pathlib import Path
from typing import Any

from sorte.config import ProviderSettings
from sorte.llm.embedded import embedded_model_path
from sorte.llm.errors import LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health

_MODELS: dict[tuple[Path, int], Any] = {}
_LOAD_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Freed explicitly while the interpreter still works: left to Llama.__del__ at
    # shutdown, llama.cpp's cleanup finds its C bindings already gone and prints errors.
    for model in _MODELS.values():
        model.close()
    _MODELS.clear()


class LlamaCppProvider:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name, self.settings = name, settings
        self._lock = threading.Lock()

    def model_file(self) -> Path:
        path = self.settings.model_path or embedded_model_path()
        if not Path(path).is_file():
            raise ModelMissing(f"llama.cpp model file {path} does not exist")
        return Path(path)

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LLMUnavailable("llama-cpp-python is not installed: `make install-llm` builds it") from None
        key = (self.model_file(), self.settings.context)
        with _LOAD_LOCK:
            if key not in _MODELS:
                _MODELS[key] = Llama(model_path=str(key[0]), n_ctx=key[1], verbose=False, seed=0)
            return _MODELS[key]

    def _run(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        llm = self._load()
        fmt = {"type": "json_object", "schema": schema} if schema else None
        with self._lock:
            out = llm.create_chat_completion(
                messages=messages, response_format=fmt, max_tokens=max_tokens, temperature=0.0, seed=0
            )
        usage = out.get("usage") or {}
        return Completion(
            out["choices"][0]["message"]["content"] or "", usage.get("prompt_tokens"), usage.get("completion_tokens")
        )

    async def complete(
        self, model: str, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> Completion:
        return await asyncio.to_thread(self._run, messages, schema, max_tokens)

    async def health(self) -> Health:
        try:
            path = self.model_file()
            import llama_cpp
        except (LLMUnavailable, ModelMissing, ImportError) as exc:
            return Health(False, str(exc))
        gpu = "yes" if llama_cpp.llama_supports_gpu_offload() else "no (CPU build)"
        return Health(True, f"llama-cpp-python {llama_cpp.__version__}, {path.name}", [path.stem], gpu)

    async def close(self) -> None:
        return None
