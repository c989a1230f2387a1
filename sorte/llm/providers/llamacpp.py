"""llama.cpp in process through llama-cpp-python, with JSON-schema constrained decoding.

One model instance per file, loaded on first use (the cold start) and shared by every
provider that names the file. llama.cpp contexts are not thread-safe, so each model carries
one lock and calls run one at a time in a worker thread, whichever provider, router or
event loop they come from; a call that times out is reported at once while the thread
finishes in the background and the next call waits its turn (the router's timeout bounds
that wait too)."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sorte.config import ProviderSettings
from sorte.llm.embedded import embedded_model_path
from sorte.llm.errors import LLMUnavailable, ModelMissing
from sorte.llm.providers.base import Completion, Health

_MODELS: dict[tuple[Path, int, bool], tuple[Any, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()
_CLOSE_WAIT_S = 30.0


@atexit.register
def _close_models() -> None:
    # Freed explicitly while the interpreter still works: left to Llama.__del__ at
    # shutdown, llama.cpp's cleanup finds its C bindings already gone and prints errors.
    # A model still decoding for a timed-out call is left open: freeing it under the
    # decoder would crash the process.
    for model, lock in _MODELS.values():
        if lock.acquire(timeout=_CLOSE_WAIT_S):
            model.close()
    _MODELS.clear()


@contextmanager
def _extra_buffers(allowed: bool) -> Iterator[None]:
    """Load with or without llama.cpp's extra CPU buffer types (weight repacking).

    On CPUs with AMX, llama.cpp repacks the weights for it, and with the embedded model the
    first decode then dies with SIGSEGV (llama-cpp-python 0.3.36 on Sapphire Rapids). ``Llama()``
    has no argument for ``use_extra_bufts``, so the default model parameters it starts from are
    wrapped while it loads (under the load lock: one load at a time)."""
    from llama_cpp import llama_cpp as lib

    original = lib.llama_model_default_params
    if allowed or "use_extra_bufts" not in {field[0] for field in lib.llama_model_params._fields_}:
        yield
        return

    def without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        lib.llama_model_default_params = original


class LlamaCppProvider:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name, self.settings = name, settings

    def model_file(self) -> Path:
        path = self.settings.model_path or embedded_model_path()
        if not Path(path).is_file():
            raise ModelMissing(f"llama.cpp model file {path} does not exist")
        return Path(path)

    def _load(self) -> tuple[Any, threading.Lock]:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LLMUnavailable("llama-cpp-python is not installed: `make install-llm` builds it") from None
        key = (self.model_file(), self.settings.context, self.settings.repack)
        with _LOAD_LOCK:
            if key not in _MODELS:
                with _extra_buffers(self.settings.repack):
                    model = Llama(model_path=str(key[0]), n_ctx=key[1], verbose=False, seed=0)
                _MODELS[key] = (model, threading.Lock())
            return _MODELS[key]

    def _run(self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int) -> Completion:
        llm, lock = self._load()
        fmt = {"type": "json_object", "schema": schema} if schema else None
        with lock:
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
