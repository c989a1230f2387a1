"""The lesson store with real Chroma and the real offline embedder (all-MiniLM-L6-v2)."""

from __future__ import annotations

import pytest
from chromadb.api.shared_system_client import SharedSystemClient

from knowledge import KnowledgeError, KnowledgeSettings, Lesson, LessonStore, open_store
from tests.knowledge.lesson_fixtures import HISTORY

pytestmark = pytest.mark.slow  # loads the embedding model (seconds)


@pytest.fixture()
def filled(store, lesson):
    for minutes, (request, strategy, rule, language) in enumerate(HISTORY):
        store.add(lesson(request, strategy, rule, minutes=minutes, language=language))
    return store


def requests(hits) -> list[str]:
    return [found.request for found, _ in hits]


def test_portuguese_request_recalls_the_momentum_stop_loss_lesson_first(filled):
    hits = filled.recall("aumenta o stop loss do momentum", k=3)
    assert requests(hits)[0] == "aumenta o stop loss do momentum para 3%"
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1]


def test_english_request_recalls_the_lesson_learned_from_a_portuguese_one(filled):
    hits = filled.recall("widen the stop loss on momentum", k=6)
    assert requests(hits)[0] == "aumenta o stop loss do momentum para 3%"
    # related above unrelated: the sentiment threshold lesson is not about stops at all
    assert requests(hits).index("make the sentiment stage threshold stricter, 0.8 instead of 0.75") > 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("RSI below 30 before buying", "only buy when RSI is under 30 in mean_reversion"),
        ("diminui a posição no breakout", "reduz o tamanho da posição do breakout para 5% do capital"),
        ("confirm breakouts with volume", "add a volume confirmation to the breakout entry"),
        ("sentiment filter threshold", "make the sentiment stage threshold stricter, 0.8 instead of 0.75"),
    ],
)
def test_related_lesson_ranks_first(filled, query, expected):
    assert requests(filled.recall(query, k=3))[0] == expected


def test_strategy_filter(filled):
    hits = filled.recall("stop loss", strategy="breakout", k=10)
    assert {found.strategy for found, _ in hits} == {"breakout"}
    assert len(hits) == 2
    assert filled.recall("stop loss", strategy="no_such_strategy") == []
    assert {found.strategy for found in filled.list(10, strategy="momentum")} == {"momentum"}


def test_near_duplicate_is_merged_newest_outcome_wins(store, lesson):
    first = store.add(
        lesson(
            "aumenta o stop loss do momentum para 3%",
            "momentum",
            "A wider momentum stop loss cut whipsaw exits.",
            metric_deltas={"sharpe": 0.1},
            commit="aaa111",
        )
    )
    again = store.add(
        lesson(
            "aumenta o stop loss do momentum para 3%!",
            "momentum",
            "A wider momentum stop loss cut whipsaw exits.",
            minutes=5,
            outcome="rejected",
            verdict="fail",
            metric_deltas={"sharpe": -0.05},
            commit="bbb222",
        )
    )
    assert store.count() == 1
    assert again.id == first.id
    assert again.times_seen == 2
    assert (again.outcome, again.verdict, again.metric_deltas, again.commit) == (
        "rejected",
        "fail",
        {"sharpe": -0.05},
        "bbb222",
    )
    assert again.created_at == first.created_at and again.updated_at > first.updated_at
    assert store.get(first.id) == again
    third = store.add(lesson(first.request, "momentum", first.rule, minutes=9, metric_deltas={"sharpe": 1}))
    assert (store.count(), third.times_seen, third.metric_deltas) == (1, 3, {"sharpe": 1.0})


def test_an_older_duplicate_counts_but_does_not_overwrite_the_newer_outcome(store, lesson):
    newer = store.add(lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped.", minutes=10))
    older = store.add(
        lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped.", minutes=1, outcome="failed")
    )
    assert older.id == newer.id and older.times_seen == 2 and older.outcome == "merged"
    assert older.created_at < newer.created_at


def test_same_text_other_strategy_and_different_lessons_are_not_merged(store, lesson):
    store.add(lesson("raise the stop loss to 3%", "momentum", "Wider stops helped."))
    store.add(lesson("raise the stop loss to 3%", "breakout", "Wider stops helped."))
    store.add(lesson("only buy when RSI is under 30", "momentum", "Fewer, better entries."))
    assert store.count() == 3
    assert all(found.times_seen == 1 for found in store.list(10))


def test_merge_threshold_is_configurable(tmp_path, minilm, lesson):
    loose = LessonStore(tmp_path / "loose", minilm, merge_threshold=0.5)
    loose.add(lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped."))
    loose.add(lesson("widen momentum's stop to three percent", "momentum", "Wider stops helped.", minutes=1))
    assert loose.count() == 1
    strict = LessonStore(tmp_path / "strict", minilm, merge_threshold=0.999)
    strict.add(lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped."))
    strict.add(lesson("widen momentum's stop to three percent", "momentum", "Wider stops helped.", minutes=1))
    assert strict.count() == 2
    with pytest.raises(KnowledgeError, match="merge_threshold"):
        LessonStore(tmp_path / "bad", minilm, merge_threshold=1.5)


def test_batch_add_merges_within_the_batch_and_against_the_store(store, lesson):
    store.add(lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped."))
    batch = [
        lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped.", minutes=1),
        lesson("only buy when RSI is under 30", "mean_reversion", "Fewer, better entries.", minutes=2),
        lesson("only buy when RSI is under 30", "mean_reversion", "Fewer, better entries.", minutes=3),
        lesson("raise the momentum stop loss to 3%", "momentum", "Wider stops helped.", minutes=4, outcome="failed"),
    ]
    stored = store.add_many(batch, batch_size=3)
    assert store.count() == 2
    assert stored[0].id == stored[3].id
    assert stored[3].times_seen == 3 and stored[3].outcome == "failed"
    assert stored[2].times_seen == 2 and stored[1].id == stored[2].id


def test_lessons_persist_across_reopen(tmp_path, minilm, lesson):
    path = tmp_path / "knowledge"
    kept = LessonStore(path, minilm).add(
        lesson("aumenta o stop loss do momentum para 3%", "momentum", "Wider stops helped.", language="pt")
    )
    SharedSystemClient.clear_system_cache()  # Chroma reuses an open client for the same path: really reopen
    reopened = LessonStore(path, minilm)
    assert reopened.count() == 1
    assert reopened.get(kept.id) == kept
    assert requests(reopened.recall("momentum stop loss")) == [kept.request]
    assert reopened.add(kept.model_copy(update={"id": "other"})).times_seen == 2
    assert LessonStore(path, minilm).count() == 1


def test_list_is_newest_first_and_limited(filled):
    listed = filled.list(3)
    assert [found.request for found in listed] == [request for request, *_ in reversed(HISTORY)][:3]
    assert filled.get("missing") is None
    with pytest.raises(KnowledgeError, match="limit"):
        filled.list(0)


def test_bad_queries(filled):
    with pytest.raises(KnowledgeError, match="empty"):
        filled.recall("  ")
    with pytest.raises(KnowledgeError, match="k must be positive"):
        filled.recall("stop", k=0)


def test_empty_store(store):
    assert store.count() == 0
    assert store.recall("anything") == []
    assert store.list() == []


def test_open_store_puts_lessons_under_the_data_dir(tmp_path, minilm, lesson):
    opened = open_store(KnowledgeSettings(), tmp_path / "var", embedder=minilm)
    opened.add(lesson("x wins", "momentum", "Something was learned."))
    assert (tmp_path / "var" / "knowledge").is_dir()
    assert opened.path == tmp_path / "var" / "knowledge"
    assert isinstance(opened.list()[0], Lesson)
