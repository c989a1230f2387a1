"""The one place a closed candle becomes a bar: exactly once, in order, cached before it is
handed out, and counted for the feed's health.

Exactly once and in order hold by construction: a symbol's bars leave here only with a
sequence number above the last one emitted (the venue's calendar numbers candles: ``open //
interval`` on a market that never closes, as in the runtime's live feed; session candles only on
one that does), so a candle seen twice (the stream and a backfill, a restart) is dropped, and a
candle is written to the cache before subscribers see it, so a restart does not refetch it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

import structlog

from sorte.market.cache import CandleCache, Row
from sorte.market.health import SymbolHealth
from sorte.market.venue import Calendar
from sorte.runtime.values import Bar

log = structlog.get_logger("sorte.market")

Via = Literal["rest", "websocket", "cache"]


@dataclass
class SymbolState:
    symbol: str
    last_seq: int | None = None  # the last emitted (or resumed-from) sequence number
    emitted_at: float | None = None  # exchange time of the last emission
    lag_s: float | None = None
    stale: bool = False
    due_since: float | None = None  # monotonic time a due candle was first seen missing
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one catch-up or emission at a time


@dataclass
class Counters:
    backfilled: int = 0
    streamed: int = 0
    gaps: int = 0


class Emitter:
    def __init__(self, source: str, timeframe: str, calendar: Calendar, cache: CandleCache) -> None:
        self.source, self.timeframe, self.calendar = source, timeframe, calendar
        self.interval_s, self.interval_ms = calendar.interval_s, calendar.interval_ms
        self.cache = cache
        self.counters = Counters()
        self._queues: list[asyncio.Queue[Bar]] = []

    def subscribe(self) -> asyncio.Queue[Bar]:
        """A queue that receives every bar emitted from now on (one per consumer)."""
        queue: asyncio.Queue[Bar] = asyncio.Queue()
        self._queues.append(queue)
        return queue

    def seq(self, row: Row) -> int:
        return self.calendar.seq(row[0])

    def emit(self, state: SymbolState, rows: list[Row], via: Via, now: float) -> int:
        """Emit the closed candles of ``rows`` newer than the last bar; returns how many.
        The caller holds ``state.lock`` and has backfilled what it could before ``rows``."""
        fresh = [r for r in sorted(rows, key=lambda r: r[0]) if state.last_seq is None or self.seq(r) > state.last_seq]
        if not fresh:
            return 0
        if via != "cache":
            self.cache.put(state.symbol, self.timeframe, fresh)
        for row in fresh:
            seq = self.seq(row)
            if state.last_seq is not None and seq > state.last_seq + 1:
                self._gap(state.symbol, state.last_seq + 1, seq)
            bar = Bar(state.symbol, seq, row[0] / 1000, *row[1:6])
            for queue in self._queues:
                queue.put_nowait(bar)
            state.last_seq = seq
        last_close_s = self.calendar.close_ms(self.seq(fresh[-1])) / 1000
        state.emitted_at, state.lag_s, state.due_since = now, max(0.0, now - last_close_s), None
        if via == "websocket":
            self.counters.streamed += len(fresh)
        elif via == "rest":
            self.counters.backfilled += len(fresh)
        return len(fresh)

    def _gap(self, symbol: str, expected: int, got: int) -> None:
        self.counters.gaps += got - expected
        log.warning(
            "market_gap", source=self.source, symbol=symbol, expected_seq=expected, got_seq=got, missing=got - expected
        )

    def age_s(self, state: SymbolState, now: float) -> float | None:
        """Seconds since the symbol's last bar closed, on the exchange's clock."""
        if state.last_seq is None:
            return None
        return now - self.calendar.close_ms(state.last_seq) / 1000

    def behind(self, state: SymbolState, now: float) -> float | None:
        """Candles closed since the symbol's last bar, market hours only (the stale measure)."""
        if state.last_seq is None:
            return None
        return self.calendar.behind(state.last_seq, now)

    def health(self, state: SymbolState, now: float) -> SymbolHealth:
        age = self.age_s(state, now)
        last_ts = None if state.last_seq is None else self.calendar.open_ms(state.last_seq) / 1000
        return SymbolHealth(
            symbol=state.symbol,
            last_seq=state.last_seq,
            last_bar_ts=last_ts,
            last_bar_age_s=None if age is None else round(age, 3),
            lag_s=None if state.lag_s is None else round(state.lag_s, 3),
            stale=state.stale,
        )
