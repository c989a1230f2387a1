"""The REST side of a collector: the lookback prefetched into the cache at start, and the
paged catch-up that polling, the WebSocket's backfill and a resume all go through."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from sorte.market.cache import CandleCache, Row
from sorte.market.emitter import Emitter, SymbolState
from sorte.market.timing import ExchangeClock
from sorte.runtime.ccxt_feed import PAGE_LIMIT, ExchangeCalls, closed_candles


class RestCandles:
    def __init__(
        self, calls: ExchangeCalls, emitter: Emitter, cache: CandleCache, clock: ExchangeClock, grace_s: float
    ) -> None:
        self.calls, self.emitter, self.cache, self.clock = calls, emitter, cache, clock
        self.timeframe, self.interval_s = emitter.timeframe, emitter.interval_s
        self.interval_ms, self.grace_s = emitter.interval_ms, grace_s

    def newest_closed_seq(self) -> int:
        """The sequence number of the newest candle closed by now, on the exchange's clock."""
        return math.floor((self.clock.now() - self.grace_s) / self.interval_s) - 1

    def due(self, state: SymbolState) -> bool:
        """Whether a candle after the symbol's last bar should have closed by now."""
        return state.last_seq is not None and state.last_seq < self.newest_closed_seq()

    async def pages(self, symbol: str, first_seq: int, before_seq: int | None = None) -> AsyncIterator[list[Row]]:
        """Closed candles from ``first_seq`` on (below ``before_seq``), a page per request."""
        since = first_seq * self.interval_ms
        while before_seq is None or since < before_seq * self.interval_ms:
            raw = await self.calls.candles(symbol, self.timeframe, since, PAGE_LIMIT)
            page = closed_candles(raw, self.clock.now(), self.interval_s, self.grace_s)
            page = [r for r in page if r[0] >= since and (before_seq is None or self.emitter.seq(r) < before_seq)]
            if page:
                yield page
            if not page or len(raw) < PAGE_LIMIT:
                return  # the exchange has nothing closed after this page
            since = int(page[-1][0]) + self.interval_ms

    async def prefetch(self, state: SymbolState, bars: int) -> int:
        """Fill the cache with the symbol's ``bars`` newest closed candles, fetching only from
        the first one it lacks; the symbol's bars then start after the newest cached one.
        Returns how many candles were fetched."""
        newest = self.newest_closed_seq()
        first = newest - bars + 1
        have = self.cache.read(state.symbol, self.timeframe, first * self.interval_ms, (newest + 1) * self.interval_ms)
        cached = {self.emitter.seq(r) for r in have}
        missing = next((s for s in range(first, newest + 1) if s not in cached), None)
        fetched = 0
        if missing is not None:
            async for page in self.pages(state.symbol, missing, newest + 1):
                fetched += self.cache.put(state.symbol, self.timeframe, page)
        if state.last_seq is None:
            latest = self.cache.last(state.symbol, self.timeframe, 1, (newest + 1) * self.interval_ms)
            state.last_seq = self.emitter.seq(latest[-1]) if latest else newest
        return fetched

    async def catch_up(self, state: SymbolState, before_seq: int | None = None) -> int:
        """Emit every closed candle after the symbol's last bar (below ``before_seq``): first
        what the cache already holds, then from REST, paged. The caller holds ``state.lock``."""
        if state.last_seq is None:
            return 0
        end = None if before_seq is None else before_seq * self.interval_ms
        cached = self.cache.read(state.symbol, self.timeframe, (state.last_seq + 1) * self.interval_ms, end)
        run = [r for i, r in enumerate(cached) if self.emitter.seq(r) == state.last_seq + 1 + i]
        emitted = self.emitter.emit(state, run, "cache", self.clock.now())
        async for page in self.pages(state.symbol, state.last_seq + 1, before_seq):
            emitted += self.emitter.emit(state, page, "rest", self.clock.now())
        return emitted
