"""One WebSocket session of a collector: from connecting until the connection is lost.

ccxt's unified ``watch_ohlcv`` hands out the latest snapshot of each candle but drops the
exchange's "closed" flag, so a candle counts as closed here when a newer candle arrives on
the same connection: every snapshot is cumulative and the stream is ordered, so the last one
seen before the next candle is the final one. Snapshots from before a reconnect are never
trusted (``pending`` starts empty); what a lost connection missed comes from REST instead.
A candle that is due but does not come (a quiet market, a silent socket) is fetched from
REST after one poll interval.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sorte.market.cache import Row
from sorte.market.venue import CcxtVenue

if TYPE_CHECKING:  # the collector drives the session; imported for the type only
    from sorte.market.collector import Collector


def take_closed(pending: dict[str, Row], symbol: str, rows: list[Row]) -> list[Row]:
    """Advance the symbol's in-progress candle through ``rows``; return those it closed."""
    closed = []
    for row in sorted(rows, key=lambda r: r[0]):
        current = pending.get(symbol)
        if current is not None and row[0] < current[0]:
            continue  # a snapshot of a candle already closed
        if current is not None and row[0] > current[0]:
            closed.append(current)
        pending[symbol] = row
    return closed


async def websocket_session(collector: Collector) -> None:
    """Stream until the connection fails; raises the first error (the caller reconnects)."""
    pending: dict[str, Row] = {}
    watching: set[str] = set()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_overdue(collector))
            while True:  # a symbol added joins this session; a dropped one's stream is left to idle
                for symbol in collector.symbols:  # (cancelling a ccxt watch can leave it unfinishable)
                    if symbol not in watching:
                        watching.add(symbol)
                        group.create_task(_watch(collector, symbol, pending))
                await collector.symbols_changed.wait()
                collector.symbols_changed.clear()
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None


async def _watch(collector: Collector, symbol: str, pending: dict[str, Row]) -> None:
    venue, what = collector.venue, f"streamed candles of {symbol}"
    if not isinstance(venue, CcxtVenue):
        raise TypeError(f"{venue.where} has no WebSocket")
    while True:
        raw = await venue.exchange.watch_ohlcv(symbol, collector.timeframe)
        collector.session_alive = True
        closed = take_closed(pending, symbol, venue.calls.validate(raw, what))
        for row in closed:
            await collector.accept_streamed(symbol, row)


async def _overdue(collector: Collector) -> None:
    """REST for a due candle the stream has not delivered within one poll interval."""
    every = collector.market.poll_interval_s
    while True:
        await asyncio.sleep(every)
        for state in collector.states.values():
            if not collector.rest.due(state):
                state.due_since = None
            elif state.due_since is None:
                state.due_since = time.monotonic()
            elif time.monotonic() - state.due_since >= every:
                await collector.catch_up(state)
