"""The REST side of a collector: the lookback prefetched into the cache at start, and the
paged catch-up that polling, the WebSocket's backfill and a resume all go through.

Which candles are due, and where a page starts, comes from the venue's calendar: on a market
with sessions nothing is due while it is closed, and the candle after a session's last one is
the next session's first."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sorte.market.cache import CandleCache, Row
from sorte.market.emitter import Emitter, SymbolState
from sorte.market.timing import ExchangeClock
from sorte.market.venue import Venue


class RestCandles:
    def __init__(
        self, venue: Venue, emitter: Emitter, cache: CandleCache, clock: ExchangeClock, grace_s: float
    ) -> None:
        self.venue, self.emitter, self.cache, self.clock = venue, emitter, cache, clock
        self.calendar = venue.calendar
        self.timeframe, self.interval_s = emitter.timeframe, emitter.interval_s
        self.grace_s = grace_s

    def newest_closed_seq(self) -> int:
        """The sequence number of the newest candle closed by now, on the exchange's clock."""
        return self.calendar.newest_closed_seq(self.clock.now() - self.grace_s)

    def due(self, state: SymbolState) -> bool:
        """Whether a candle after the symbol's last bar should have closed by now."""
        return state.last_seq is not None and state.last_seq < self.newest_closed_seq()

    def closed(self, rows: list[Row]) -> list[Row]:
        """Drop the in-progress candle: the last one unless its end is ``grace_s`` in the past
        (a candle followed by a later one is closed)."""
        if rows and self.calendar.close_ms(self.emitter.seq(rows[-1])) / 1000 + self.grace_s > self.clock.now():
            return rows[:-1]
        return rows

    def on_calendar(self, rows: list[Row]) -> list[Row]:
        """Cached rows the calendar still has a candle for (its sessions may have been changed)."""
        return [r for r in rows if self.calendar.seq_at(r[0]) is not None]

    async def pages(self, symbol: str, first_seq: int, before_seq: int | None = None) -> AsyncIterator[list[Row]]:
        """Closed candles from ``first_seq`` on (below ``before_seq``), a page per request."""
        since = self.calendar.open_ms(first_seq)
        end = None if before_seq is None else self.calendar.open_ms(before_seq)
        limit = self.venue.page_limit
        while end is None or since < end:
            raw = await self.venue.candles(symbol, since, limit, self.clock.now())
            page = self.closed(raw)
            page = [r for r in page if r[0] >= since and (before_seq is None or self.emitter.seq(r) < before_seq)]
            if page:
                yield page
            if not page or len(raw) < limit:
                return  # the venue has nothing closed after this page
            since = self.calendar.open_ms(self.emitter.seq(page[-1]) + 1)

    async def prefetch(self, state: SymbolState, bars: int) -> int:
        """Fill the cache with the symbol's ``bars`` newest closed candles, fetching only from
        the first one it lacks; the symbol's bars then start after the newest cached one.
        Returns how many candles were fetched."""
        newest = self.newest_closed_seq()
        first = newest - bars + 1
        upto = self.calendar.open_ms(newest + 1)
        have = self.on_calendar(self.cache.read(state.symbol, self.timeframe, self.calendar.open_ms(first), upto))
        cached = {self.emitter.seq(r) for r in have}
        missing = next((s for s in range(first, newest + 1) if s not in cached), None)
        fetched = 0
        if missing is not None:
            async for page in self.pages(state.symbol, missing, newest + 1):
                fetched += self.cache.put(state.symbol, self.timeframe, page)
        if state.last_seq is None:
            latest = self.on_calendar(self.cache.last(state.symbol, self.timeframe, 1, upto))
            state.last_seq = self.emitter.seq(latest[-1]) if latest else newest
        return fetched

    async def catch_up(self, state: SymbolState, before_seq: int | None = None) -> int:
        """Emit every closed candle after the symbol's last bar (below ``before_seq``): first
        what the cache already holds, then from REST, paged. The caller holds ``state.lock``."""
        if state.last_seq is None:
            return 0
        end = None if before_seq is None else self.calendar.open_ms(before_seq)
        cached = self.on_calendar(
            self.cache.read(state.symbol, self.timeframe, self.calendar.open_ms(state.last_seq + 1), end)
        )
        run = [r for i, r in enumerate(cached) if self.emitter.seq(r) == state.last_seq + 1 + i]
        emitted = self.emitter.emit(state, run, "cache", self.clock.now())
        if self.venue.poll_when_due and not self.due(state):
            return emitted  # the cache had it all: no request against the quota
        async for page in self.pages(state.symbol, state.last_seq + 1, before_seq):
            emitted += self.emitter.emit(state, page, "rest", self.clock.now())
        return emitted
