"""A collector: one per source, for a list of symbols and one timeframe.

The source (the venue, ``sorte.market.venue``) follows ``runtime.feed``: a crypto exchange
through ccxt (the exchange id names the source), or B3 through brapi (``b3``,
``sorte.market.b3``). At start it loads the markets, measures the venue's clock offset and
prefetches each symbol's lookback into the shared candle cache. It then streams closed candles
over the exchange's WebSocket (ccxt's unified ``watch_ohlcv``) where ccxt offers one, and polls
REST otherwise, or after ``websocket_failures`` failed connections in a row (trying the socket
again every ``websocket_retry_s``). Whatever the path, every candle goes through one
emitter: closed candles only, each once, in order, as sequence-numbered ``Bar``s, cached
before they are handed out. After any lost connection or failed poll every missed candle is
backfilled from REST before a newer one is emitted.

The venue's calendar says when candles are due: always on a crypto exchange; during B3's
sessions only, whose candles are numbered without gaps across nights, weekends and holidays.
A symbol with no new closed candle for ``stale_intervals`` intervals of market time is stale:
the alert callback is called once (and once again when it recovers) and ``entries_allowed`` is
false until it does; a closed market is never stale. Nothing is ever made up in the meantime:
no bar leaves without a candle.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import ccxt
import structlog

from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.market.cache import CandleCache
from sorte.market.emitter import Emitter, SymbolState
from sorte.market.health import FeedHealth, MarketAlert, Mode
from sorte.market.rest import RestCandles
from sorte.market.stream import websocket_session
from sorte.market.timing import ExchangeClock, backoff_s
from sorte.market.venue import CcxtVenue, Venue
from sorte.paths import candle_cache
from sorte.runtime.ccxt_feed import ExchangeError, one_line
from sorte.runtime.ccxt_feed import rows_to_ohlcv as _rows_to_ohlcv
from sorte.runtime.clock import Clock, WallClock
from sorte.runtime.values import Bar, Ohlcv

log = structlog.get_logger("sorte.market")

AlertHandler = Callable[[MarketAlert], None]


def open_venue(settings: Settings) -> Venue:
    """The source ``runtime.feed`` names: B3 through brapi for ``b3``, else the ccxt exchange."""
    if settings.runtime.feed == "b3":
        from sorte.market.b3.brapi import B3Venue  # httpx and the B3 calendar: only when asked for

        return B3Venue(settings)
    return CcxtVenue(settings)


class Collector:
    def __init__(
        self,
        settings: Settings,
        symbols: list[str] | None = None,
        *,
        clock: Clock | None = None,
        on_alert: AlertHandler | None = None,
    ) -> None:
        self.symbols = sorted(set(symbols if symbols is not None else settings.runtime.symbols))
        if not self.symbols:
            raise ConfigError("a market collector needs symbols: set runtime.symbols (e.g. ['BTC/USDT'])")
        self.market = settings.market
        self.venue = open_venue(settings)
        self.source, self.timeframe = self.venue.name, self.venue.timeframe
        self.calendar = self.venue.calendar
        self.interval_s = self.calendar.interval_s
        self.clock = ExchangeClock(clock or WallClock(), self.venue)
        self.cache = CandleCache(candle_cache(settings.data_dir, self.source))
        self.emitter = Emitter(self.source, self.timeframe, self.calendar, self.cache)
        grace = self.market.grace_s + self.venue.delay_s
        self.rest = RestCandles(self.venue, self.emitter, self.cache, self.clock, grace)
        self.states = {s: SymbolState(s) for s in self.symbols}
        self.on_alert = on_alert
        self.mode: Mode = "starting"
        self.reconnects = self.poll_failures = 0
        self.session_alive = False  # the current WebSocket session delivered something
        self.symbols_changed = asyncio.Event()
        self._started = False

    # -- public surface ------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Bar]:
        """Every bar emitted from now on, in order per symbol (subscribe before ``run``)."""
        return self.emitter.subscribe()

    async def start(self, cursor: dict[str, int] | None = None) -> None:
        """Load the markets, measure the clock and prefetch every symbol's lookback. Bars then
        start after ``cursor[symbol]`` (a resume), else after the newest closed candle."""
        await self.venue.load_symbols(self.symbols)
        await self.clock.sync()
        for symbol, state in self.states.items():
            if cursor and symbol in cursor:
                state.last_seq = int(cursor[symbol])
            fetched = await self.rest.prefetch(state, self.market.prefetch_bars)
            log.info("market_prefetched", source=self.source, symbol=symbol, fetched=fetched, last_seq=state.last_seq)
        self._started = True

    async def run(self, cursor: dict[str, int] | None = None) -> None:
        """Collect until cancelled."""
        if not self._started:
            await self.start(cursor)
        watchdog = asyncio.create_task(self._watchdog())
        try:
            while True:
                if self.streams():
                    await self._run_websocket()
                    await self._run_polling(time.monotonic() + self.market.websocket_retry_s)
                else:
                    await self._run_polling(math.inf)
        finally:
            watchdog.cancel()
            self.mode = "stopped"

    async def close(self) -> None:
        await self.venue.close()
        self.cache.close()

    async def set_symbols(self, symbols: list[str]) -> list[str]:
        """Collect ``symbols`` from now on; returns those added, their markets checked and their
        lookback prefetched (their bars start after the newest closed candle). A dropped
        symbol's bars stop; its candles stay in the cache."""
        wanted = sorted(set(symbols))
        added = [s for s in wanted if s not in self.states]
        if added:
            await self.venue.load_symbols(added)  # an unknown symbol fails here, nothing changed
            for symbol in added:
                state = SymbolState(symbol)
                fetched = await self.rest.prefetch(state, self.market.prefetch_bars)
                log.info("market_symbol_added", source=self.source, symbol=symbol, fetched=fetched)
                self.states[symbol] = state
        for symbol in [s for s in self.states if s not in wanted]:
            del self.states[symbol]
            log.info("market_symbol_dropped", source=self.source, symbol=symbol)
        if wanted != self.symbols:
            self.symbols = wanted
            self.symbols_changed.set()  # the WebSocket session watches the added ones too
        return added

    def streams(self) -> bool:
        """Whether the WebSocket is used: asked for, and offered by the venue (ccxt.pro)."""
        return self.market.websocket and self.venue.streams()

    def entries_allowed(self, symbol: str | None = None) -> bool:
        """False while ``symbol`` (any symbol, if None) is stale: no entries on old prices."""
        states = [self.states[symbol]] if symbol is not None else self.states.values()
        return not any(s.stale for s in states)

    def recent(self, bar: Bar) -> bool:
        """Whether ``bar`` closed at most ``stale_intervals`` intervals of market time ago (a night
        or a weekend in between does not count, the venue's delay does not either): recent
        enough for new entries."""
        behind = self.calendar.behind(bar.seq, self.clock.now() - self.venue.delay_s)
        return behind <= self.market.stale_intervals

    def history(self, symbol: str, n: int, before_seq: int | None = None) -> Ohlcv:
        """The ``n`` newest cached candles of ``symbol`` before ``before_seq`` (warm-up)."""
        end = None if before_seq is None else self.calendar.open_ms(before_seq)
        rows = self.rest.on_calendar(self.cache.last(symbol, self.timeframe, n, end))
        return _rows_to_ohlcv(rows, self.interval_s)

    def health(self) -> FeedHealth:
        now = self.clock.now()
        symbols = [self.emitter.health(s, now) for s in self.states.values()]
        lags = [s.lag_s for s in symbols if s.lag_s is not None]
        c = self.emitter.counters
        opens_at = self.calendar.next_open(now)  # None while the market is open
        return FeedHealth(
            source=self.source,
            timeframe=self.timeframe,
            mode=self.mode,
            symbols=symbols,
            lag_s=max(lags) if lags else None,
            clock_offset_s=round(self.clock.offset_s, 3),
            reconnects=self.reconnects,
            poll_failures=self.poll_failures,
            backfilled_candles=c.backfilled,
            streamed_candles=c.streamed,
            gaps=c.gaps,
            stale_symbols=[s.symbol for s in symbols if s.stale],
            entries_allowed=self.entries_allowed(),
            market_open=opens_at is None,
            opens_at=opens_at,
            at=time.time(),
        )

    # -- what the stream and the polls call ----------------------------------------------
    async def accept_streamed(self, symbol: str, row: list[float]) -> None:
        """A closed candle from the WebSocket: missed ones before it come from REST first."""
        state = self.states.get(symbol)
        if state is None:  # dropped while its stream was still open
            return
        async with state.lock:
            seq = self.emitter.seq(row)
            if state.last_seq is not None and seq > state.last_seq + 1:
                await self.rest.catch_up(state, before_seq=seq)
            self.emitter.emit(state, [row], "websocket", self.clock.now())
        self.check_stale(state)

    async def catch_up(self, state: SymbolState) -> bool:
        """Emit what the symbol missed, from the cache and REST; False if the exchange failed."""
        try:
            async with state.lock:
                await self.rest.catch_up(state)
        except ExchangeError as exc:
            self.poll_failures += 1
            log.warning("market_poll_failed", source=self.source, symbol=state.symbol, reason=str(exc))
            return False
        finally:
            self.check_stale(state)
        return True

    def check_stale(self, state: SymbolState) -> None:
        """Mark the symbol stale (or recovered) and alert once on each change."""
        now = self.clock.now()
        behind = self.emitter.behind(state, now - self.venue.delay_s)
        stale = behind is not None and behind > self.market.stale_intervals
        if stale == state.stale:
            return
        state.stale = stale
        if stale:
            assert behind is not None
            late_s = behind * self.interval_s  # market time: a night in between does not count
            message = (
                f"no new {self.timeframe} candle of {state.symbol} on {self.source} for {late_s:.0f} s: no entries"
            )
        else:
            message = f"{state.symbol} on {self.source} is live again (last bar seq {state.last_seq})"
        alert = MarketAlert(
            kind="stale" if stale else "recovered", source=self.source, symbol=state.symbol, message=message, at=now
        )
        log.warning("market_" + alert.kind, source=self.source, symbol=state.symbol, message=message)
        if self.on_alert is not None:
            self.on_alert(alert)

    # -- the two ways of collecting ------------------------------------------------------
    async def _run_polling(self, until: float) -> None:
        self.mode = "polling"
        while time.monotonic() < until:
            await asyncio.gather(*(self.catch_up(s) for s in self.states.values() if self._poll_now(s)))
            await asyncio.sleep(self.market.poll_interval_s)

    def _poll_now(self, state: SymbolState) -> bool:
        """Whether this poll asks REST for the symbol: always, unless the venue counts requests
        (brapi); then only while a candle is due (never while the market is closed)."""
        return not self.venue.poll_when_due or self.rest.due(state)

    async def _run_websocket(self) -> None:
        """Sessions until ``websocket_failures`` connections in a row delivered nothing."""
        failures = 0
        while failures < self.market.websocket_failures:
            self.mode, self.session_alive = "websocket", False
            caught_up = all(await asyncio.gather(*(self.catch_up(s) for s in self.states.values())))
            try:
                if caught_up:  # REST first: never a newer streamed candle before the missed ones
                    await websocket_session(self)
            except (ccxt.BaseError, ExchangeError, OSError) as exc:  # lost, refused or broken
                self.reconnects += 1
                log.warning("market_reconnect", source=self.source, reconnects=self.reconnects, reason=one_line(exc))
            failures = 0 if self.session_alive else failures + 1
            wait = backoff_s(max(failures, 1), self.market.reconnect_backoff_s, self.market.reconnect_backoff_max_s)
            await asyncio.sleep(wait)
        log.warning("market_websocket_unavailable", source=self.source, fallback="polling", failures=failures)

    async def _watchdog(self) -> None:
        """Stale checks between candles, and the clock offset measured again now and then."""
        while True:
            await asyncio.sleep(min(1.0, self.market.poll_interval_s))
            for state in self.states.values():
                self.check_stale(state)
            if self.clock.due(self.market.clock_sync_s):
                try:
                    await self.clock.sync()
                except ExchangeError as exc:
                    log.warning("exchange_clock_failed", source=self.source, reason=str(exc))
