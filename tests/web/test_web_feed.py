"""The market feed on the status page and in /api/v1/overview, read from the health file the
commander writes: the figures, a per-symbol table with the stale symbol marked, ages advanced
from the snapshot's time, and nothing (no crash) before there is a file."""

from __future__ import annotations

import re
import time

import pytest

from sorte.config import Settings
from sorte.service import Overview
from tests.feed_health import commander_lock, write_feed
from tests.web.web_env import client, with_web


@pytest.fixture()
def web(settings: Settings) -> Settings:
    return with_web(settings)


def test_no_feed_file_shows_no_feed(web: Settings) -> None:
    c = client(web)
    page = c.get("/")
    assert page.status_code == 200
    assert 'id="feed-state" class="muted">no feed yet' in page.text and "No market feed yet" in page.text
    assert 'id="feed-symbols"' not in page.text
    assert c.get("/api/v1/overview").json()["feed"] is None


def test_the_feed_card_figures_and_symbols_with_a_stale_one(web: Settings) -> None:
    write_feed(web.data_dir, ago_s=7200)  # two hours old: every age has grown by as much
    c = client(web)
    with commander_lock(web.data_dir):
        overview = Overview.model_validate(c.get("/api/v1/overview").json())
        page = c.get("/").text
    feed = overview.feed
    assert feed is not None and feed.source == "binance" and feed.mode == "websocket"
    ages = {s.symbol: s.last_bar_age_s for s in feed.symbols}
    assert 7230 <= (ages["BTC/USDT"] or 0) < 7300 and 7830 <= (ages["ETH/USDT"] or 0) < 7900
    assert feed.oldest_bar_age_s == ages["ETH/USDT"] and feed.stale_symbols == ["ETH/USDT"]
    assert feed.state == "old" and not feed.current  # the commander runs, but wrote nothing for two hours
    assert feed.summary.startswith("as of ") and ", not updated for 2.0 h: binance 1m websocket" in feed.summary

    assert 'id="feed-state" class="state old">websocket, old' in page
    assert "binance 1m · last bar 2.2 h ago" in page
    assert feed.summary in page
    for figure in ("2 (1 failed polls)", "17 backfilled, 240 streamed, 0 gaps", "-0.250 s", "blocked (stale data)"):
        assert figure in page, figure
    rows = re.findall(
        r"<tr( class=\"stale\")?><td>([^<]+)</td>", page.split('id="feed-symbols"')[1].split("</table>")[0]
    )
    assert rows == [("", "BTC/USDT"), (' class="stale"', "ETH/USDT")]


def test_a_current_feed_is_live_or_stale_on_the_card(web: Settings) -> None:
    c = client(web)
    with commander_lock(web.data_dir):
        write_feed(web.data_dir, stale=False)
        live = c.get("/").text
        write_feed(web.data_dir, stale=True)
        stale = c.get("/").text
        overview = c.get("/api/v1/overview").json()
    assert 'class="state live">websocket</p>' in live and "new entries blocked" not in live
    assert 'class="state stale">websocket, stale</p>' in stale and "stale: ETH/USDT, new entries blocked" in stale
    assert overview["feed"]["entries_allowed"] is False and overview["feed"]["state"] == "stale"
    assert time.time() - overview["feed"]["at"] < 60
    assert '<dd id="feed-market">open</dd>' in live


def test_a_closed_market_on_the_card(web: Settings) -> None:
    c = client(web)
    with commander_lock(web.data_dir):
        write_feed(web.data_dir, stale=False, source="b3", mode="polling", opens_at=1_797_253_200.0)
        page = c.get("/").text
        overview = c.get("/api/v1/overview").json()
    assert "closed (no bars are due), opens 2026-12-14 13:00" in page and "market closed until" in page
    assert overview["feed"]["market_open"] is False and overview["feed"]["opens_at"] == 1_797_253_200.0
