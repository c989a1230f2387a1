"""One llama.cpp context, one caller at a time: every provider naming the same model file
shares the model's lock, whichever router, thread or event loop the call comes from."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from sorte.config import ProviderSettings
from sorte.llm.providers import llamacpp


class _RecordingModel:
    """Stands for a llama.cpp context: counts callers inside it at once."""

    def __init__(self) -> None:
        self.inside = self.most = 0
        self.guard = threading.Lock()
        self.closed = False

    def create_chat_completion(self, **_: object) -> dict:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.02)
        with self.guard:
            self.inside -= 1
        return {"choices": [{"message": {"content": "{}"}}], "usage": {}}

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, _RecordingModel]:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"gguf")
    fake = _RecordingModel()
    monkeypatch.setattr(llamacpp, "_MODELS", {(path, 2048, False): (fake, threading.Lock())})
    return path, fake


def _provider(name: str, path: Path) -> llamacpp.LlamaCppProvider:
    return llamacpp.LlamaCppProvider(name, ProviderSettings(kind="llamacpp", model_path=path, context=2048))


def test_two_providers_of_one_model_never_call_it_at_once(model):
    path, fake = model
    providers = [_provider("a", path), _provider("b", path)]

    def loop(provider: llamacpp.LlamaCppProvider) -> None:
        async def calls() -> None:
            await asyncio.gather(*(provider.complete("m", [], None, 4) for _ in range(5)))

        asyncio.run(calls())

    threads = [threading.Thread(target=loop, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.most == 1


def test_a_model_still_decoding_is_not_freed_at_exit(model, monkeypatch):
    path, fake = model
    monkeypatch.setattr(llamacpp, "_CLOSE_WAIT_S", 0.05)
    _, lock = llamacpp._MODELS[(path, 2048, False)]
    with lock:  # a timed-out call still inside the model
        llamacpp._close_models()
    assert not fake.closed


def test_an_idle_model_is_freed_at_exit(model):
    _, fake = model
    llamacpp._close_models()
    assert fake.closed


def test_the_model_loads_without_extra_buffers_unless_asked():
    lib = pytest.importorskip("llama_cpp.llama_cpp")
    with llamacpp._extra_buffers(False):
        assert lib.llama_model_default_params().use_extra_bufts is False
    assert lib.llama_model_default_params().use_extra_bufts is True  # restored
    with llamacpp._extra_buffers(True):
        assert lib.llama_model_default_params().use_extra_bufts is True
