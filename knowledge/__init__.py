"""Lessons in Chroma, embeddings, recall.

Every outcome of the agent (merged, rejected, failed, rolled back) becomes a :class:`Lesson`;
the next plan recalls the lessons closest in meaning to its request::

    from knowledge import KnowledgeSettings, open_store

    store = open_store(KnowledgeSettings(), data_dir=Path("var"))
    store.add(Lesson(request="aumenta o stop loss do momentum para 3%", strategy="momentum", ...))
    for lesson, score in store.recall("raise momentum's stop loss", k=3): ...
"""

from __future__ import annotations

from pathlib import Path

from knowledge.embeddings import Embedder, MiniLMEmbedder, OllamaEmbedder, make_embedder
from knowledge.errors import KnowledgeError
from knowledge.lesson import Lesson, Outcome, Verdict
from knowledge.settings import KnowledgeSettings
from knowledge.store import LessonStore


def open_store(
    settings: KnowledgeSettings, data_dir: Path | str = "var", embedder: Embedder | None = None
) -> LessonStore:
    """The store configured by ``settings`` (its folder defaults to ``<data_dir>/knowledge``)."""
    return LessonStore(
        settings.resolved_path(Path(data_dir)),
        embedder or make_embedder(settings),
        merge_threshold=settings.merge_threshold,
        collection=settings.collection,
    )


__all__ = [
    "Embedder",
    "KnowledgeError",
    "KnowledgeSettings",
    "Lesson",
    "LessonStore",
    "MiniLMEmbedder",
    "OllamaEmbedder",
    "Outcome",
    "Verdict",
    "make_embedder",
    "open_store",
]
