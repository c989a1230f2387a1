"""The lesson store: lessons in an embedded, persistent Chroma collection, recalled by meaning.

One collection per embedder (vectors of different models do not mix), cosine space. Every
vector is computed by the store's embedder and handed to Chroma explicitly. Adding a lesson
that is a near duplicate of one already stored (same strategy, cosine similarity at or above
``merge_threshold``) merges the two instead of piling up copies: the newest outcome, verdict,
metrics, rule and commit win, ``times_seen`` adds up, and the first ``created_at`` stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.embeddings import Embedder
from knowledge.errors import KnowledgeError
from knowledge.lesson import Lesson

_WRITE_BATCH = 1000


def _collection_name(prefix: str, embedder_name: str) -> str:
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", embedder_name).strip("-_") or "embedder"
    return f"{prefix}-{slug}"[:63].rstrip("-_")


def _metadata(lesson: Lesson) -> dict[str, str | int | float]:
    return {
        "strategy": lesson.strategy,
        "outcome": lesson.outcome,
        "verdict": lesson.verdict,
        "kind": lesson.kind,
        "language": lesson.language,
        "times_seen": lesson.times_seen,
        "created_ts": lesson.created_at.timestamp(),
        "updated_ts": lesson.updated_at.timestamp(),
        "lesson": lesson.model_dump_json(),
    }


def _lesson(metadata: Mapping[str, Any]) -> Lesson:
    return Lesson.model_validate_json(metadata["lesson"])


def _included(result: Mapping[str, Any], key: str) -> list[Any]:
    """A field of a Chroma result that the call named in ``include`` (Chroma types them all optional)."""
    value = result.get(key)
    if value is None:
        raise KnowledgeError(f"the lesson store returned no {key}")
    return list(value)


def merge(old: Lesson, new: Lesson) -> Lesson:
    """``old`` and ``new`` as one lesson: the newer one's content, ``old``'s id, both counts."""
    newest = new if new.updated_at >= old.updated_at else old
    return newest.model_copy(
        update={
            "id": old.id,
            "created_at": min(old.created_at, new.created_at),
            "updated_at": max(old.updated_at, new.updated_at),
            "times_seen": old.times_seen + new.times_seen,
        }
    )


class LessonStore:
    """``LessonStore(path, embedder)``: add, recall, list, get, count."""

    def __init__(
        self,
        path: Path | str,
        embedder: Embedder,
        merge_threshold: float = 0.92,
        collection: str = "lessons",
    ):
        if not 0.0 < merge_threshold <= 1.0:
            raise KnowledgeError(f"merge_threshold must be in (0, 1], got {merge_threshold}")
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        # absolute: Chroma caches its clients by the path string, and a relative one may mean another folder
        self.path = Path(path).resolve()
        self.embedder = embedder
        self.merge_threshold = merge_threshold
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KnowledgeError(f"cannot create the lesson store folder {self.path}: {exc}") from exc
        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        )
        # embedding_function=None: Chroma must never embed (its default model downloads and fails offline).
        self._col = self._client.get_or_create_collection(
            _collection_name(collection, embedder.name),
            embedding_function=None,
            metadata={"hnsw:space": "cosine", "embedder": embedder.name},
        )

    # -- writing -----------------------------------------------------------------------
    def add(self, lesson: Lesson) -> Lesson:
        """Store ``lesson``, or merge it into its near duplicate; returns what is stored."""
        return self.add_many([lesson])[0]

    def add_many(self, lessons: Iterable[Lesson], batch_size: int = 500) -> list[Lesson]:
        """Store lessons in batches (one embedding call and one write per batch); merges as :meth:`add`."""
        lessons = list(lessons)
        stored: list[Lesson] = []
        for start in range(0, len(lessons), batch_size):
            stored.extend(self._add_batch(lessons[start : start + batch_size]))
        return stored

    def _add_batch(self, batch: Sequence[Lesson]) -> list[Lesson]:
        if not batch:
            return []
        vectors = self.embedder.embed([lesson.document() for lesson in batch])
        nearest = self._nearest_stored(batch, vectors)
        # id -> (lesson, vector): what this batch writes, in order; later lessons merge into earlier ones too.
        pending: dict[str, tuple[Lesson, np.ndarray]] = {}
        results: list[Lesson] = []
        for i, lesson in enumerate(batch):
            vector = vectors[i]
            best: tuple[Lesson, np.ndarray] | None = None
            best_sim = -2.0
            near = nearest[i]
            if near is not None:
                stored, best_sim, stored_vector = near
                # already merged earlier in this batch: merge into that version
                best = pending.get(stored.id, (stored, stored_vector))
            for plesson, pvector in pending.values():
                if plesson.strategy == lesson.strategy:
                    sim = float(vector @ pvector)
                    if sim > best_sim:
                        best_sim, best = sim, (plesson, pvector)
            if best is not None and best_sim >= self.merge_threshold and best[0].id != lesson.id:
                merged = merge(best[0], lesson)
                pending[merged.id] = (merged, vector if merged.updated_at == lesson.updated_at else best[1])
                results.append(merged)
            else:
                pending[lesson.id] = (lesson, vector)
                results.append(lesson)
        items = list(pending.items())
        for start in range(0, len(items), _WRITE_BATCH):
            chunk = items[start : start + _WRITE_BATCH]
            self._col.upsert(
                ids=[pid for pid, _ in chunk],
                embeddings=np.stack([vec for _, (_, vec) in chunk]),
                documents=[lesson.document() for _, (lesson, _) in chunk],
                metadatas=[_metadata(lesson) for _, (lesson, _) in chunk],
            )
        # a lesson merged again later in the batch: return its final state
        return [pending[r.id][0] for r in results]

    def _nearest_stored(
        self, batch: Sequence[Lesson], vectors: np.ndarray
    ) -> list[tuple[Lesson, float, np.ndarray] | None]:
        """For each lesson, the most similar stored lesson of the same strategy, its similarity and vector."""
        nearest: list[tuple[Lesson, float, np.ndarray] | None] = [None] * len(batch)
        if self._col.count() == 0:
            return nearest
        by_strategy: dict[str, list[int]] = {}
        for i, lesson in enumerate(batch):
            by_strategy.setdefault(lesson.strategy, []).append(i)
        for strategy, indexes in by_strategy.items():
            found = self._col.query(
                query_embeddings=vectors[indexes],
                n_results=1,
                where={"strategy": strategy},
                include=["metadatas", "distances", "embeddings"],
            )
            columns = (_included(found, "metadatas"), _included(found, "distances"), _included(found, "embeddings"))
            rows = zip(indexes, *columns, strict=True)
            for i, metas, dists, embs in rows:
                if metas:
                    nearest[i] = (_lesson(metas[0]), 1.0 - float(dists[0]), np.asarray(embs[0], dtype=np.float32))
        return nearest

    # -- reading -----------------------------------------------------------------------
    def recall(self, query: str, strategy: str | None = None, k: int = 5) -> list[tuple[Lesson, float]]:
        """The ``k`` lessons closest in meaning to ``query`` (best first) with their cosine similarity."""
        if not query or not query.strip():
            raise KnowledgeError("the recall query is empty")
        if k <= 0:
            raise KnowledgeError(f"k must be positive, got {k}")
        total = self._col.count()
        if total == 0:
            return []
        vector = self.embedder.embed([query])
        found = self._col.query(
            query_embeddings=vector,
            n_results=min(k, total),
            where={"strategy": strategy} if strategy else None,
            include=["metadatas", "distances"],
        )
        return [
            (_lesson(meta), 1.0 - float(dist))
            for meta, dist in zip(_included(found, "metadatas")[0], _included(found, "distances")[0], strict=True)
        ]

    def list(self, limit: int = 20, strategy: str | None = None) -> list[Lesson]:
        """The most recently seen lessons first."""
        if limit <= 0:
            raise KnowledgeError(f"limit must be positive, got {limit}")
        got = self._col.get(where={"strategy": strategy} if strategy else None, include=["metadatas"])
        metas = sorted(_included(got, "metadatas"), key=lambda m: m["updated_ts"], reverse=True)[:limit]
        return [_lesson(meta) for meta in metas]

    def get(self, lesson_id: str) -> Lesson | None:
        got = self._col.get(ids=[lesson_id], include=["metadatas"])
        return _lesson(_included(got, "metadatas")[0]) if got["ids"] else None

    def count(self) -> int:
        return self._col.count()
