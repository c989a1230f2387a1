"""Live feed: polls an exchange's candles through ccxt, behind the same ``Feed`` interface
as the replay feed. Never the default: it is chosen explicitly (``runtime.feed=ccxt``).

Rules that keep the runtime's one code path honest on live data:
- only CLOSED candles become bars: the in-progress last candle is never emitted (a candle
  is closed once the exchange returned a later one, or its end is ``grace_s`` in the past);
- each bar is emitted once; its sequence number is derived from its time
  (``seq = open_ts // interval``), so it is the same across restarts and a missing candle
  shows up as a jump in the sequence, which is logged as a gap;
- one batch holds the bars of one timestamp (what the runtime's step expects), so a
  backlog (first poll after a resume, a slow poll) is drained one timestamp per call;
- every call has a timeout and a bounded number of retries with backoff on network
  errors; what still fails becomes one clear ``ExchangeError`` line.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import numpy as np
import structlog

from sorte.config import ExchangeSettings, Settings
from sorte.errors import ConfigError, DataError
from sorte.runtime.clock import Clock, WallClock
from sorte.runtime.values import Bar, Ohlcv

log = structlog.get_logger("sorte.feed")

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_S = 0.5
PAGE_LIMIT = 500  # candles per request: within every major exchange's maximum

# Spot only: without these, ccxt's binance also loads futures/margin markets and currencies
# (more endpoints, private ones when keys are set) before the first candle.
SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "adjustForTimeDifference": False,
}


class ExchangeError(DataError):
    """The exchange could not be reached, was too slow, or answered something unusable."""


def exchange_class(name: str, asynchronous: bool, streaming: bool = False) -> type:
    """The ccxt class of exchange ``name``; a ConfigError naming the problem otherwise.
    ``streaming`` asks for ccxt.pro's class (REST and WebSocket in one client) where ccxt.pro
    has the exchange, else the plain async one (which then has no ``watchOHLCV``)."""
    if name not in ccxt.exchanges:
        close = [e for e in ccxt.exchanges if e.startswith(name[:3].lower())][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown exchange {name!r}: ccxt has no such exchange{hint}")
    if streaming:
        import ccxt.pro as ccxt_pro  # only the market-data service needs the WebSocket layer

        if name in ccxt_pro.exchanges:
            return getattr(ccxt_pro, name)
    return getattr(ccxt_async if asynchronous else ccxt, name)


def create_exchange(
    settings: ExchangeSettings,
    *,
    asynchronous: bool,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    credentials: bool = False,
    rate_limit: bool = True,
    streaming: bool = False,
) -> Any:
    """A ccxt client for ``settings.name``, spot only, pointed at ``settings.base_url`` (and its
    WebSocket endpoints at ``settings.ws_url``) if set. Credentials are only handed over when
    asked for (the feed never needs them); ``streaming`` gives ccxt.pro's client."""
    config: dict[str, Any] = {
        "timeout": int(timeout_s * 1000),
        "enableRateLimit": rate_limit,
        "options": dict(SPOT_OPTIONS),
    }
    if credentials:
        config["apiKey"] = settings.api_key.get_secret_value() if settings.api_key else ""
        config["secret"] = settings.api_secret.get_secret_value() if settings.api_secret else ""
    exchange = exchange_class(settings.name, asynchronous, streaming)(config)
    if settings.base_url:
        redirect_urls(exchange.urls["api"], settings.base_url.rstrip("/"))
    if settings.ws_url and isinstance(exchange.urls["api"].get("ws"), dict | str):
        redirect_urls(exchange.urls["api"]["ws"], settings.ws_url.rstrip("/"))
    return exchange


def redirect_urls(urls: Any, base_url: str) -> Any:
    """Replace the scheme and host of every API URL with ``base_url``, keeping the paths."""
    if isinstance(urls, str):
        return base_url + urlsplit(urls).path
    if isinstance(urls, dict):
        for key, value in urls.items():
            urls[key] = redirect_urls(value, base_url)
    return urls


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A short, single-line reason; query strings (timestamps, signatures) are cut out."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\?\S*", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_timeframe(name: str) -> float:
    try:
        seconds = float(ccxt.Exchange.parse_timeframe(name))
    except Exception as exc:  # ccxt raises NotSupported or a bare ValueError/KeyError here
        raise ConfigError(f"invalid timeframe {name!r} (examples: 1m, 5m, 1h, 1d): {one_line(exc)}") from None
    if seconds <= 0:
        raise ConfigError(f"invalid timeframe {name!r}: its duration must be positive")
    return seconds


def seq_of(open_ms: float, interval_s: float) -> int:
    """A candle's sequence number: its open time in intervals, the same across restarts."""
    return int((open_ms / 1000) // interval_s)


def closed_candles(rows: list[list[float]], now_s: float, interval_s: float, grace_s: float) -> list[list[float]]:
    """Drop the in-progress candle: the last one unless its end is safely past ``now_s``."""
    if rows and (rows[-1][0] / 1000 + interval_s + grace_s) > now_s:
        return rows[:-1]
    return rows


def rows_to_ohlcv(rows: list[list[float]], interval_s: float) -> Ohlcv:
    """Candle rows ``[open_ms, o, h, l, c, v]`` as the runtime's column arrays."""
    cols = np.array(rows, dtype=float).reshape(-1, 6).T
    return Ohlcv(cols[0] / 1000, cols[1], cols[2], cols[3], cols[4], cols[5], interval_s=interval_s)


class ExchangeCalls:
    """Calls to one exchange client: each with a timeout and bounded retries with backoff on
    network failures, answers checked, and what still fails turned into one clear line."""

    def __init__(
        self, exchange: Any, name: str, where: str, *, timeout_s: float, attempts: int, backoff_s: float
    ) -> None:
        self.exchange, self.name, self.where = exchange, name, where
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, max(1, attempts), backoff_s

    async def load_markets(self, symbols: list[str], timeframe: str) -> None:
        """Load the markets; a clear error if a symbol or the timeframe is not offered."""
        markets = await self.call("loading markets", self.exchange.load_markets)
        if not isinstance(markets, dict) or not markets:
            raise ExchangeError(f"malformed answer from {self.where} while loading markets: no markets listed")
        for sym in symbols:
            if sym not in markets:
                known = ", ".join(sorted(markets)[:5])
                raise DataError(f"unknown symbol {sym!r} on {self.where} ({len(markets)} markets, e.g. {known})")
        if self.exchange.timeframes and timeframe not in self.exchange.timeframes:
            raise ConfigError(f"timeframe {timeframe!r} is not offered by {self.name}")

    async def candles(self, symbol: str, timeframe: str, since: int | None, limit: int) -> list[list[float]]:
        what = f"candles of {symbol}"
        rows = await self.call(what, self.exchange.fetch_ohlcv, symbol, timeframe, since, limit)
        return self.validate(rows, what)

    def validate(self, rows: Any, what: str) -> list[list[float]]:
        """ccxt turns unparsable JSON into rows of None: catch that (and worse) here."""
        if not isinstance(rows, list):
            raise ExchangeError(f"malformed answer from {self.where} for {what}: expected a list of candles")
        clean: dict[int, list[float]] = {}
        for i, row in enumerate(rows):
            try:
                values = [float(v) for v in row[:6]]
            except (TypeError, ValueError, IndexError):
                values = []
            if len(values) != 6 or not all(math.isfinite(v) for v in values) or values[2] < values[3]:
                raise ExchangeError(f"malformed answer from {self.where} for {what}: candle {i} is {row!r:.80}")
            clean[int(values[0])] = values
        return [clean[t] for t in sorted(clean)]

    async def call(self, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` with a timeout, retrying network failures with exponential backoff."""
        reason = ""
        for attempt in range(1, self.attempts + 1):
            try:
                # ccxt enforces ``timeout_s`` itself; this outer guard only stops a hang.
                return await asyncio.wait_for(fn(*args), self.timeout_s * 2 + 1)
            except (TimeoutError, ccxt.RequestTimeout):
                reason = f"did not answer within {self.timeout_s:g} s"
            except ccxt.BadSymbol as exc:
                raise DataError(f"unknown symbol on {self.where} ({what}): {one_line(exc)}") from None
            except ccxt.BadResponse as exc:
                raise ExchangeError(f"malformed answer from {self.where} for {what}: {one_line(exc)}") from None
            except ccxt.OperationFailed as exc:  # network errors and transient server failures
                reason = f"is unreachable: {one_line(exc)}"
            except ccxt.BaseError as exc:
                raise ExchangeError(f"{self.where} refused {what}: {one_line(exc)}") from None
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise ExchangeError(f"malformed answer from {self.where} for {what}: {one_line(exc)}") from None
            log.warning("exchange_retry", exchange=self.name, call=what, attempt=attempt, reason=reason)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise ExchangeError(f"exchange {self.where} {reason} ({what}; gave up after {self.attempts} attempts)")


class CcxtPollingFeed:
    """Polls ``fetch_ohlcv`` of all symbols concurrently and emits closed candles as bars."""

    live = True

    def __init__(
        self,
        settings: Settings,
        symbols: list[str] | None = None,
        *,
        clock: Clock | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_s: float = DEFAULT_BACKOFF_S,
        grace_s: float = 2.0,
        min_poll_s: float = 1.0,
        rate_limit: bool = True,
    ) -> None:
        self.symbols = sorted(symbols if symbols is not None else settings.runtime.symbols)
        if not self.symbols:
            raise ConfigError("the ccxt feed needs symbols: set runtime.symbols (e.g. ['BTC/USDT'])")
        ex = settings.exchange
        self.name, self.timeframe = ex.name, ex.timeframe
        self._interval_s = parse_timeframe(ex.timeframe)
        self.exchange = create_exchange(ex, asynchronous=True, timeout_s=timeout_s, rate_limit=rate_limit)
        self.where = f"{ex.name} at {ex.base_url}" if ex.base_url else ex.name
        self.clock = clock or WallClock()
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, max(1, attempts), backoff_s
        self.calls = ExchangeCalls(
            self.exchange, ex.name, self.where, timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s
        )
        self.grace_s, self.min_poll_s = grace_s, min_poll_s
        self._last: dict[str, int] = {}  # last emitted (or resumed-from) sequence number per symbol
        self._queue: dict[str, deque[Bar]] = {s: deque() for s in self.symbols}
        self._markets_ready = False
        self._last_poll = -math.inf
        self.gaps: list[tuple[str, int, int]] = []  # (symbol, expected seq, received seq)

    # -- Feed interface ------------------------------------------------------------------
    def interval_s(self, symbol: str) -> float:
        return self._interval_s

    def seek(self, cursor: dict[str, int]) -> None:
        """Resume after ``cursor``: the next bars of a symbol are those after its sequence
        number (missed ones are caught up). Symbols absent from it start live."""
        for sym in self.symbols:
            self._queue[sym].clear()
            if sym in cursor:
                self._last[sym] = int(cursor[sym])
            else:
                self._last.pop(sym, None)

    async def next_batch(self) -> list[Bar] | None:
        """The closed bars of the earliest pending timestamp; [] when no new bar closed yet.
        A live feed is never exhausted, so it never returns None."""
        if not any(self._queue.values()):
            await self._poll()
        return self._pop_earliest()

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        """Up to ``n`` closed bars of ``symbol`` just before ``before_seq`` (warm-up window)."""
        await self._ensure_markets()
        interval_ms = int(self._interval_s * 1000)
        rows: list[list[float]] = []
        since = (before_seq - n) * interval_ms
        while n > 0 and len(rows) < n:
            page = await self._fetch(symbol, since, min(PAGE_LIMIT, n - len(rows)))
            page = [r for r in self._closed(page) if self.seq_of(r[0]) < before_seq]
            if not page:
                break
            rows.extend(page)
            since = int(page[-1][0]) + interval_ms
        return rows_to_ohlcv(rows[-n:] if n > 0 else [], self._interval_s)

    # -- extras used by the live session -------------------------------------------------
    async def prime(self) -> dict[str, int]:
        """Poll once so that every symbol knows its latest closed bar; returns the cursor.
        A fresh live feed starts after that bar: history is for warm-up, not for trading."""
        await self._poll(force=True)
        return dict(self._last)

    async def close(self) -> None:
        await self.exchange.close()

    def seq_of(self, open_ms: float) -> int:
        return seq_of(open_ms, self._interval_s)

    # -- polling -------------------------------------------------------------------------
    async def _poll(self, force: bool = False) -> None:
        # Guards the exchange against a hot loop when the batch interval is set to 0.
        wait = self._last_poll + self.min_poll_s - time.monotonic()
        if wait > 0 and not force:
            await asyncio.sleep(wait)
        self._last_poll = time.monotonic()
        await self._ensure_markets()
        await asyncio.gather(*(self._poll_symbol(s) for s in self.symbols))

    async def _poll_symbol(self, symbol: str) -> None:
        last = self._last.get(symbol)
        if last is None:  # fresh: start after the latest closed bar
            closed = self._closed(await self._fetch(symbol, None, 3))
            if closed:
                self._last[symbol] = self.seq_of(closed[-1][0])
            return
        since = (last + 1) * int(self._interval_s * 1000)
        for row in self._closed(await self._fetch(symbol, since, PAGE_LIMIT)):
            seq = self.seq_of(row[0])
            if seq <= last:
                continue  # the exchange echoed a bar already emitted
            if seq > last + 1:
                self._gap(symbol, last + 1, seq)
            self._queue[symbol].append(Bar(symbol, seq, row[0] / 1000, *row[1:6]))
            last = seq
        self._last[symbol] = last

    def _gap(self, symbol: str, expected: int, got: int) -> None:
        self.gaps.append((symbol, expected, got))
        log.warning("feed_gap", symbol=symbol, expected_seq=expected, got_seq=got, missing_bars=got - expected)

    def _closed(self, rows: list[list[float]]) -> list[list[float]]:
        return closed_candles(rows, self.clock.now(), self._interval_s, self.grace_s)

    def _pop_earliest(self) -> list[Bar]:
        heads = [q[0].ts for q in self._queue.values() if q]
        if not heads:
            return []
        ts = min(heads)
        return [q.popleft() for q in self._queue.values() if q and q[0].ts == ts]

    # -- exchange calls ------------------------------------------------------------------
    async def _ensure_markets(self) -> None:
        if not self._markets_ready:
            await self.calls.load_markets(self.symbols, self.timeframe)
            self._markets_ready = True

    async def _fetch(self, symbol: str, since: int | None, limit: int) -> list[list[float]]:
        return await self.calls.candles(symbol, self.timeframe, since, limit)
