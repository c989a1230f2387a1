"""A market feed's health file written as the commander writes it (``sorte.market.write_health``),
and a commander's lock held, for the tests of what the front-ends show of the feed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commander.inbox import CommanderLock
from sorte import paths
from sorte.market import FeedHealth, SymbolHealth, write_health


def write_feed(
    data_dir: Path,
    *,
    ago_s: float = 0.0,
    stale: bool = True,
    source: str = "binance",
    mode: str = "websocket",
    at: float | None = None,
    opens_at: float | None = None,
) -> FeedHealth:
    """Two symbols, ETH/USDT stale when ``stale``; the snapshot taken ``ago_s`` seconds ago; the
    market closed until ``opens_at`` when given."""
    at = time.time() - ago_s if at is None else at
    health = FeedHealth(
        source=source,
        timeframe="1m",
        mode=mode,  # type: ignore[arg-type]
        symbols=[
            SymbolHealth(symbol="BTC/USDT", last_seq=29000000, last_bar_ts=at - 90, last_bar_age_s=30, lag_s=1.5),
            SymbolHealth(
                symbol="ETH/USDT", last_seq=28999990, last_bar_ts=at - 690, last_bar_age_s=630, lag_s=0.5, stale=stale
            ),
        ],
        lag_s=1.5,
        clock_offset_s=-0.25,
        reconnects=2,
        poll_failures=1,
        backfilled_candles=17,
        streamed_candles=240,
        gaps=0,
        stale_symbols=["ETH/USDT"] if stale else [],
        entries_allowed=not stale,
        market_open=opens_at is None,
        opens_at=opens_at,
        at=at,
    )
    folder = paths.commander_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_health(paths.feed_health(folder), health)
    return health


@contextmanager
def commander_lock(data_dir: Path) -> Iterator[None]:
    """What makes a commander count as running: its lock on the data directory, held."""
    folder = paths.commander_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = CommanderLock(folder)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
