"""``sorte pairs`` through Typer's CliRunner, against the local fake Binance through the real ccxt
client, on a data dir whose only setting is the exchange's address."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fake_exchange import FakeBinance
from typer.testing import CliRunner

from sorte.cli.main import app
from sorte.paths import pairs_file

runner = CliRunner()
VOLUMES = {"BTC/USDT": 5e9, "ETH/USDT": 2e9, "SOL/USDT": 4e8, "DOGE/USDT": 2e5, "USDC/USDT": 9e9, "ETH/BTC": 1e9}


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def flat(text: str) -> str:
    """The output on one line, table borders and wrapping gone."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture()
def fake(settings, monkeypatch) -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(VOLUMES)).start()
    for symbol, volume in VOLUMES.items():
        exchange.set_ticker(symbol, quote_volume=volume)
    monkeypatch.setenv("SORTE_EXCHANGE__BASE_URL", exchange.url)
    yield exchange
    exchange.stop()


def test_nothing_saved_says_why_and_what_to_do(settings, fake):
    result = invoke("pairs")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "no pair selection saved yet" in text and "pair selection is off" in text
    assert "market.pairs.enabled=true" in text and "sorte pairs --refresh" in text
    assert fake.requests == []  # showing never calls the exchange


def test_refresh_selects_from_the_exchange_saves_and_shows_why(settings, fake):
    result = invoke("pairs", "--refresh")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "pairs on binance quoted in USDT: 3 of 6 tickers" in text
    assert "pair selection is off" in text  # the default: the commander trades runtime.symbols
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert symbol in text
    assert "5B USDT" in text and "beats 100 % of the other 2" in text
    assert "rejected: 1 by quote, 1 by blacklist, 1 by min_quote_volume (--all lists them)" in text
    saved = json.loads(pairs_file(settings.data_dir).read_text())
    assert [p["symbol"] for p in saved["selected"]] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]

    shown = invoke("pairs")  # what was saved, without the exchange
    requests = len(fake.requests)
    assert shown.exit_code == 0 and "BTC/USDT" in shown.output and len(fake.requests) == requests
    listed = flat(invoke("pairs", "--all").output)
    assert "ETH/BTC quote quoted in BTC, not USDT" in listed
    assert "USDC/USDT blacklist matches the blacklist pattern 'USDC/*'" in listed
    assert "DOGE/USDT min_quote_volume 24 h volume 200k USDT < 1M" in listed

    as_json = invoke("pairs", "--json")
    data = json.loads(as_json.stdout)
    assert [p["symbol"] for p in data["selected"]] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert data["selected"][0]["rank"] == 1 and data["selected"][0]["why"].startswith("score 1.00")
    assert {r["symbol"]: r["filter"] for r in data["rejected"]}["DOGE/USDT"] == "min_quote_volume"


def test_a_selection_made_with_other_settings_says_so(settings, fake, monkeypatch):
    assert invoke("pairs", "--refresh").exit_code == 0
    monkeypatch.setenv("SORTE_MARKET__PAIRS__ENABLED", "true")
    monkeypatch.setenv("SORTE_MARKET__PAIRS__NUMBER_ASSETS", "2")
    text = flat(invoke("pairs").output)
    assert "pair selection is off" not in text
    assert "with other market.pairs settings than the current ones" in text


def test_an_unreachable_exchange_is_one_clear_error(settings, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("SORTE_EXCHANGE__BASE_URL", f"http://127.0.0.1:{port}")
    result = invoke("pairs", "--refresh")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "error:" in text and "unreachable" in text and "loading markets" in text
    assert "Traceback" not in result.output
    assert not pairs_file(settings.data_dir).exists()


def test_a_damaged_saved_selection_is_one_clear_error(settings):
    path = pairs_file(settings.data_dir)
    path.parent.mkdir(parents=True)
    path.write_text("{")
    result = invoke("pairs")
    assert result.exit_code == 2 and "is malformed" in flat(result.output)
