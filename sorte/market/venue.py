"""What a collector needs from a market-data source (a venue), and when candles are due.

A venue loads and checks the symbols, fetches closed candles from a time on (paged), may
measure its clock and may stream. Its ``Calendar`` says when candles exist: it turns a candle's
open time into its sequence number and back, and tells how far the candles have got at a time.
Sequence numbers are contiguous: the candle after seq ``n`` is ``n + 1``, whatever lies between
them (a night, a weekend), so a jump is a missing candle and nothing else.

``ContinuousCalendar`` is a market that never closes (crypto): ``seq = open // interval``, the
numbers the runtime's live feed has always used. ``CcxtVenue`` is a crypto exchange through
ccxt (REST and ccxt.pro's WebSocket). B3's session calendar and brapi live in ``sorte.market.b3``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

from sorte.config import Settings
from sorte.errors import DataError
from sorte.market.cache import Row
from sorte.runtime.ccxt_feed import PAGE_LIMIT, ExchangeCalls, create_exchange, parse_timeframe, seq_of


class Calendar(ABC):
    """When the candles of one timeframe open and close, and their sequence numbers."""

    interval_s: float
    interval_ms: int

    @abstractmethod
    def seq_at(self, open_ms: float) -> int | None:
        """The sequence number of the candle opening at ``open_ms``; None if the market is
        closed then (no candle opens at that time)."""

    @abstractmethod
    def open_ms(self, seq: int) -> int:
        """When candle ``seq`` opens (epoch ms)."""

    @abstractmethod
    def close_ms(self, seq: int) -> int:
        """When candle ``seq`` closes (epoch ms): its open plus the interval, or earlier when its
        session closes first."""

    @abstractmethod
    def position(self, t_s: float) -> float:
        """How far the candles have got at ``t_s`` (epoch s), in candles: ``n + f`` while candle
        ``n`` is ``f`` done. Time stands still while the market is closed: the position is then
        the first candle of the next session."""

    def in_session(self, t_s: float) -> bool:
        """Whether the market is open at ``t_s`` (always, for a continuous market)."""
        return True

    def next_open(self, t_s: float) -> float | None:
        """When the next session opens (epoch s) while the market is closed at ``t_s``; None
        while it is open."""
        if self.in_session(t_s):
            return None
        return self.open_ms(math.floor(self.position(t_s))) / 1000  # closed: the next session's first candle

    def seq(self, open_ms: float) -> int:
        """The sequence number of a candle the calendar accepts (as ``seq_at``), else a DataError."""
        seq = self.seq_at(open_ms)
        if seq is None:
            raise DataError(f"no candle opens at {open_ms / 1000:.0f} s (epoch): the market is closed then")
        return seq

    def newest_closed_seq(self, now_s: float) -> int:
        """The newest candle closed by ``now_s``."""
        return math.floor(self.position(now_s)) - 1

    def behind(self, last_seq: int, now_s: float) -> float:
        """How many candles after ``last_seq`` have closed by ``now_s`` (fractions count):
        market hours only, so a night or a weekend adds nothing."""
        return self.position(now_s) - (last_seq + 1)


class ContinuousCalendar(Calendar):
    """A market that never closes: ``seq = open // interval``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.interval_ms = int(interval_s * 1000)

    def seq_at(self, open_ms: float) -> int:
        return seq_of(open_ms, self.interval_s)

    def open_ms(self, seq: int) -> int:
        return seq * self.interval_ms

    def close_ms(self, seq: int) -> int:
        return (seq + 1) * self.interval_ms

    def position(self, t_s: float) -> float:
        return t_s / self.interval_s


class Venue(ABC):
    """A source of candles for one timeframe, as a collector uses it."""

    name: str  # the source id: the cache file, the health and the alerts name it
    where: str  # how errors name it
    timeframe: str
    calendar: Calendar
    page_limit: int = PAGE_LIMIT  # fewer rows than this in an answer: nothing more after them
    delay_s: float = 0.0  # how late candles come after they close (a delayed data plan)
    poll_when_due: bool = False  # polling asks REST only while a candle is due (a request quota)

    def streams(self) -> bool:
        """Whether the venue has a WebSocket for candles."""
        return False

    @abstractmethod
    async def load_symbols(self, symbols: list[str]) -> None:
        """Check that every symbol (and the timeframe) is offered; a clear error otherwise."""

    @abstractmethod
    async def candles(self, symbol: str, since_ms: int, limit: int, now_s: float) -> list[Row]:
        """Candles opening at ``since_ms`` or later, oldest first, checked: each at the open time
        its calendar gives it. The last one may still be in progress."""

    async def server_time_ms(self) -> float | None:
        """The venue's clock, if it has a time endpoint."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release the connections."""


class CcxtVenue(Venue):
    """A crypto exchange through ccxt: continuous candles, REST and (ccxt.pro) a WebSocket."""

    def __init__(self, settings: Settings) -> None:
        ex, market = settings.exchange, settings.market
        self.name, self.timeframe = ex.name, ex.timeframe
        self.calendar = ContinuousCalendar(parse_timeframe(ex.timeframe))
        timeout = market.request_timeout_s
        self.exchange: Any = create_exchange(ex, asynchronous=True, timeout_s=timeout, streaming=True)
        self.where = f"{ex.name} at {ex.base_url}" if ex.base_url else ex.name
        self.calls = ExchangeCalls(
            self.exchange,
            ex.name,
            self.where,
            timeout_s=timeout,
            attempts=market.request_attempts,
            backoff_s=market.reconnect_backoff_s,
        )

    def streams(self) -> bool:
        return bool(self.exchange.has.get("watchOHLCV"))

    async def load_symbols(self, symbols: list[str]) -> None:
        await self.calls.load_markets(symbols, self.timeframe)

    async def candles(self, symbol: str, since_ms: int, limit: int, now_s: float) -> list[Row]:
        return await self.calls.candles(symbol, self.timeframe, since_ms, limit)

    async def server_time_ms(self) -> float | None:
        if not self.exchange.has.get("fetchTime"):
            return None
        return float(await self.calls.call("the exchange time", self.exchange.fetch_time))

    async def close(self) -> None:
        await self.exchange.close()
