"""Answers that need no model, in the message's language: PnL from the book, a strategy's
settings from the catalogue, lessons from the store."""

from __future__ import annotations

from pathlib import Path

from sorte.agent import answers
from sorte.config import REPO_ROOT, Settings
from sorte.interpret import build_catalogue
from sorte.service import reading


def test_pnl_before_any_trade_says_so_in_the_message_language(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    assert answers.pnl(settings, reading, "pt").startswith("Nenhuma operação ainda")
    assert answers.pnl(settings, reading, "en").startswith("No trades yet")


def test_numbers_are_written_as_each_language_writes_them() -> None:
    assert answers._number(10000.0, "pt", ",.2f") == "10.000,00"
    assert answers._number(10000.0, "en", ",.2f") == "10,000.00"
    assert answers._number(-1.5, "pt", "+.2f") == "-1,50"


def test_a_strategy_s_settings_come_from_the_catalogue() -> None:
    text = answers.explain(build_catalogue(REPO_ROOT), "mean_reversion", "pt")
    assert text.startswith("Configuração atual:")
    assert "rsi_period = 14 [2, 100]" in text and "oversold = 30 [1, 50]" in text
    everything = answers.explain(build_catalogue(REPO_ROOT), None, "en")
    assert "MIN_CONFIDENCE = 0.75" in everything and "breakout:" in everything


def test_no_lessons_yet_is_said_plainly(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    assert answers.lessons(settings, "momentum", "en").startswith("No lessons yet about momentum")
