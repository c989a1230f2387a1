from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge import Lesson, LessonStore, MiniLMEmbedder
from tests.knowledge.lesson_fixtures import FakeOllamaEmbed


@pytest.fixture()
def ollama_embed():
    with FakeOllamaEmbed() as server:
        yield server


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture()
def store(tmp_path: Path, minilm: MiniLMEmbedder) -> LessonStore:
    return LessonStore(tmp_path / "knowledge", minilm)


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture()
def lesson() -> Callable[..., Lesson]:
    """A lesson factory; ``minutes`` orders lessons in time."""

    def make(request: str, strategy: str, rule: str, minutes: int = 0, **fields) -> Lesson:
        at = T0 + timedelta(minutes=minutes)
        defaults = {"outcome": "merged", "verdict": "pass", "created_at": at, "updated_at": at}
        return Lesson(request=request, strategy=strategy, rule=rule, **{**defaults, **fields})

    return make
