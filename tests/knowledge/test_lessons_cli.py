"""``sorte lessons``: list, search, filter, JSON, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knowledge import KnowledgeSettings, open_store
from sorte.cli.main import app
from tests.knowledge.lesson_fixtures import HISTORY

pytestmark = pytest.mark.slow  # loads the embedding model

runner = CliRunner()


@pytest.fixture()
def lessons(settings, minilm, lesson):
    store = open_store(KnowledgeSettings(), settings.data_dir, embedder=minilm)
    for minutes, (request, strategy, rule, language) in enumerate(HISTORY):
        store.add(lesson(request, strategy, rule, minutes=minutes, language=language, commit=f"c{minutes}"))
    return store


def invoke(*args):
    return runner.invoke(app, ["lessons", *args], catch_exceptions=False)


def test_lists_the_newest_lessons(lessons):
    result = invoke("--limit", "2")
    assert result.exit_code == 0, result.output
    assert "newest lessons" in result.output
    assert "sentiment" in result.output and "breakout" in result.output
    assert "momentum" not in result.output


def test_searches_by_meaning_as_json(lessons):
    result = invoke("aumenta o stop loss do momentum", "--json", "-n", "3")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 3
    assert rows[0]["request"] == "aumenta o stop loss do momentum para 3%"
    assert rows[0]["commit"] == "c0" and rows[0]["language"] == "pt"
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_search_table_and_strategy_filter(lessons):
    result = invoke("stop loss", "--strategy", "breakout")
    assert result.exit_code == 0, result.output
    assert "score" in result.output and "breakout" in result.output and "momentum" not in result.output
    unknown = invoke("stop loss", "--strategy", "nope")
    assert unknown.exit_code == 0 and "no lessons for strategy nope" in unknown.output


def test_empty_store_says_so(settings):
    result = invoke()
    assert result.exit_code == 0 and "no lessons" in result.output
    assert json.loads(invoke("--json").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--limit", "0"], "--limit must be positive"), (["   "], "the query is empty")],
)
def test_bad_input_exits_2(settings, args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_bad_knowledge_setting_exits_2(settings, monkeypatch):
    monkeypatch.setenv("SORTE_KNOWLEDGE__EMBEDDER", "word2vec")
    result = invoke()
    assert result.exit_code == 2 and "embedder" in result.output


def test_the_installed_command_reads_lessons_written_by_another_process(lessons, settings):
    """A real `sorte lessons` process (fresh Chroma client, fresh model load) finds what this process stored."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    env["SORTE_DATA_DIR"] = str(settings.data_dir)
    sorte = Path(sys.executable).with_name("sorte")
    done = subprocess.run(
        [str(sorte), "lessons", "diminui a posição no breakout", "--json", "-n", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["request"] for row in rows] == ["reduz o tamanho da posição do breakout para 5% do capital"]
