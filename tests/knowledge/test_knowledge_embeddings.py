"""Embedders: the offline default, the settings, and Ollama's embeddings through langchain-ollama."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from knowledge import KnowledgeError, KnowledgeSettings, LessonStore, MiniLMEmbedder, OllamaEmbedder, make_embedder
from knowledge.embeddings import bundled_minilm_dir
from tests.knowledge.lesson_fixtures import EMBED_DIM, bag_of_words


@pytest.mark.slow
def test_minilm_runs_offline_from_the_wheel(monkeypatch):
    def no_network(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", no_network)
    folder = bundled_minilm_dir()
    assert (folder / "model.safetensors").is_file()
    embedder = MiniLMEmbedder(folder)
    vectors = embedder.embed(["aumenta o stop loss do momentum", "raise the momentum stop loss", "bake a cake"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embedder.embed([]).shape == (0, 384)


def test_minilm_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(KnowledgeError, match="not a sentence-transformers model"):
        MiniLMEmbedder(tmp_path).embed(["x"])


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SORTE_KNOWLEDGE__EMBEDDER", "ollama")
    monkeypatch.setenv("SORTE_KNOWLEDGE__OLLAMA_MODEL", "mxbai-embed-large")
    monkeypatch.setenv("SORTE_KNOWLEDGE__MERGE_THRESHOLD", "0.95")
    monkeypatch.setenv("SORTE_KNOWLEDGE__TORCH_THREADS", "2")
    settings = KnowledgeSettings()
    assert (settings.embedder, settings.ollama_model, settings.merge_threshold) == ("ollama", "mxbai-embed-large", 0.95)
    assert settings.torch_threads == 2
    assert settings.resolved_path(tmp_path) == tmp_path / "knowledge"
    embedder = make_embedder(settings)
    assert isinstance(embedder, OllamaEmbedder) and embedder.name == "ollama-mxbai-embed-large"
    monkeypatch.setenv("SORTE_KNOWLEDGE__PATH", str(tmp_path / "elsewhere"))
    assert KnowledgeSettings().resolved_path(tmp_path) == tmp_path / "elsewhere"
    monkeypatch.setenv("SORTE_KNOWLEDGE__EMBEDDER", "word2vec")
    with pytest.raises(ValueError, match="embedder"):
        KnowledgeSettings()
    monkeypatch.delenv("SORTE_KNOWLEDGE__EMBEDDER")
    assert isinstance(make_embedder(KnowledgeSettings()), MiniLMEmbedder)


def test_ollama_embedder_through_langchain_against_a_local_server(ollama_embed):
    embedder = OllamaEmbedder("nomic-embed-text", ollama_embed.url)
    vectors = embedder.embed(["raise the stop loss", "raise the stop loss now"])
    assert vectors.shape == (2, EMBED_DIM)
    expected = np.array(bag_of_words("raise the stop loss"))
    assert np.allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-6)
    calls = [r for r in ollama_embed.requests if r.path == "/api/embed"]
    assert len(calls) == 1
    assert calls[0].body["model"] == "nomic-embed-text"
    assert calls[0].body["input"] == ["raise the stop loss", "raise the stop loss now"]


def test_ollama_embedder_default_is_the_embeddings_role_model():
    """knowledge's Ollama embedder and the ``embeddings`` LLM role name the same model
    (all-MiniLM-L6-v2, as Ollama calls it); the embedded profile's role is the in-process one."""
    from sorte.config import LLMSettings

    assert KnowledgeSettings().ollama_model == "all-minilm"
    ollama_role = LLMSettings(profile="ollama").role("embeddings").chain
    assert ollama_role[0].model == KnowledgeSettings().ollama_model
    embedded = LLMSettings().role("embeddings").chain
    assert [(t.provider, t.model) for t in embedded] == [("knowledge", "all-MiniLM-L6-v2")]
    assert all(t.model != "SmolLM2-135M-Instruct" for t in ollama_role)


def test_lesson_store_on_ollama_embeddings(ollama_embed, tmp_path, lesson):
    settings = KnowledgeSettings(embedder="ollama", ollama_base_url=ollama_embed.url, path=tmp_path / "k")
    from knowledge import open_store

    store = open_store(settings)
    store.add(lesson("raise the momentum stop loss", "momentum", "Wider stops helped."))
    store.add(lesson("only buy when rsi is under 30", "mean_reversion", "Fewer entries, better ones."))
    store.add(lesson("raise the momentum stop loss", "momentum", "Wider stops helped.", minutes=3))
    assert store.count() == 2
    hits = store.recall("momentum stop loss", k=2)
    assert hits[0][0].strategy == "momentum" and hits[0][0].times_seen == 2
    # another embedder's vectors live in another collection of the same folder
    assert LessonStore(tmp_path / "k", OllamaEmbedder("other-model", ollama_embed.url)).count() == 0


def test_ollama_errors_are_one_clear_message(ollama_embed):
    with pytest.raises(KnowledgeError, match="not-pulled"):
        OllamaEmbedder("not-pulled", ollama_embed.url).embed(["x"])
    url = ollama_embed.url
    ollama_embed.stop()
    with pytest.raises(KnowledgeError, match="Ollama embeddings"):
        OllamaEmbedder("nomic-embed-text", url, timeout_s=2).embed(["x"])
