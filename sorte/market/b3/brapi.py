"""brapi's HTTP API (https://brapi.dev) as a collector's venue for B3 equities and indices.

Sorte uses one endpoint: ``GET /api/quote/{ticker}``, with ``range`` and ``interval`` for the
candles (``results[0].historicalDataPrice``: ``date`` in epoch seconds, ``open``, ``high``,
``low``, ``close``, ``volume``), without them to check that a ticker exists. brapi takes no
start time: a request asks for the smallest ``range`` that reaches back to it, and the answer is
cut there. One ticker per request (what every plan allows).

The token comes from the environment (``SORTE_MARKET__B3__TOKEN`` or ``.env``, else
``BRAPI_TOKEN``) and travels in the ``Authorization`` header only: never in a URL, a log line or
an error message. Every request has a timeout and bounded retries with exponential backoff on
network failures and 5xx answers; a 429 waits as long as ``Retry-After`` says (and holds back
the next requests as long), unless that is too long to wait now. A refused token (401, 403), an
unknown ticker (404) and a malformed answer are one clear line each, never retried.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from sorte.config import Settings
from sorte.errors import ConfigError, DataError
from sorte.market.b3.calendar import b3_calendar
from sorte.market.cache import Row
from sorte.market.venue import Venue
from sorte.runtime.ccxt_feed import ExchangeError, one_line, parse_timeframe

log = structlog.get_logger("sorte.market")

SOURCE = "b3"
QUOTE_PATH = "/api/quote/"
TOKEN_ENV = "BRAPI_TOKEN"
# brapi's ``range`` values and the calendar days each surely covers (a range of trading days
# covers at least as many calendar days); "max" beyond the last one.
RANGES = [(1, "1d"), (5, "5d"), (28, "1mo"), (89, "3mo"), (181, "6mo"), (365, "1y"), (730, "2y"), (1826, "5y")]
RETRY_AFTER_MAX_S = 60.0  # a longer Retry-After fails the call now (the next poll tries again)
TOKEN_HELP = "set SORTE_MARKET__B3__TOKEN (or BRAPI_TOKEN) in the environment or .env to a valid brapi token"


def range_for(days: int) -> str:
    """The smallest brapi ``range`` that surely reaches ``days`` calendar days back (today is 1)."""
    return next((name for covered, name in RANGES if days <= covered), "max")


def env_token(settings: Settings) -> str | None:
    secret = settings.market.b3.token
    token = secret.get_secret_value() if secret is not None else os.environ.get(TOKEN_ENV, "")
    return token.strip() or None


class BrapiClient:
    """Requests to brapi: timeouts, retries with backoff, 429s respected, answers checked."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout_s: float,
        attempts: int,
        backoff_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.where = f"brapi at {base_url.rstrip('/')}"
        self.timeout_s, self.attempts, self.backoff_s = timeout_s, max(1, attempts), backoff_s
        self._token = token
        headers = {"Accept": "application/json", "User-Agent": "sorte"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._not_before = 0.0  # monotonic time before which brapi asked not to be called (429)

    async def close(self) -> None:
        await self.http.aclose()

    async def quote(self, ticker: str) -> dict[str, Any]:
        """The ticker's quote (no candles): a DataError if brapi does not know it."""
        return await self._result(ticker, {}, f"the quote of {ticker}")

    async def history(self, ticker: str, interval: str, range_: str) -> list[Any]:
        """The raw ``historicalDataPrice`` of ``ticker``."""
        what = f"candles of {ticker} ({interval}, range {range_})"
        result = await self._result(ticker, {"range": range_, "interval": interval}, what)
        prices = result.get("historicalDataPrice")
        if prices is None:
            return []
        if not isinstance(prices, list):
            raise ExchangeError(f"malformed answer from {self.where} for {what}: historicalDataPrice is not a list")
        return prices

    async def _result(self, ticker: str, params: dict[str, str], what: str) -> dict[str, Any]:
        body = await self.get(QUOTE_PATH + quote(ticker, safe=""), params, what, ticker)
        results = body.get("results")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            if body.get("error"):
                raise DataError(f"unknown ticker {ticker!r} on {self.where}: {self._message(body)}")
            raise ExchangeError(f"malformed answer from {self.where} for {what}: no results")
        result = next((r for r in results if str(r.get("symbol", "")).upper() == ticker.upper()), None)
        if result is None:
            raise ExchangeError(f"malformed answer from {self.where} for {what}: no result for {ticker}")
        return result

    async def get(self, path: str, params: dict[str, str], what: str, ticker: str = "") -> dict[str, Any]:
        """GET ``path`` as JSON, retrying what may pass; one clear error for what will not."""
        reason = ""
        for attempt in range(1, self.attempts + 1):
            await self._hold_back(what)
            wait = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = await self.http.get(path, params=params)
            except httpx.TimeoutException:
                reason = f"did not answer within {self.timeout_s:g} s"
            except httpx.HTTPError as exc:  # refused, reset, DNS: the network
                reason = f"is unreachable: {self._scrub(one_line(exc))}"
            else:
                status = response.status_code
                if status == 200:
                    return self._json(response, what)
                body = self._error_body(response)
                if status == 429:
                    wait = self._retry_after(response, wait)
                    self._not_before = time.monotonic() + wait
                    reason = f"is rate limiting requests (429, retry after {wait:g} s)"
                    if wait > RETRY_AFTER_MAX_S:
                        break
                elif status >= 500:
                    reason = f"answered {status}: {self._message(body)}"
                else:
                    raise self._refusal(status, body, what, ticker)
            log.warning("exchange_retry", exchange=SOURCE, call=what, attempt=attempt, reason=reason)
            if attempt < self.attempts:
                await asyncio.sleep(wait)
        raise ExchangeError(f"{self.where} {reason} ({what}; gave up after {attempt} attempts)")

    # -- answers -------------------------------------------------------------------------------
    def _refusal(self, status: int, body: dict[str, Any], what: str, ticker: str) -> Exception:
        message = self._message(body)
        if status == 401:
            if self._token is None:
                return ConfigError(f"{self.where} wants a token for {what} (401: {message}): {TOKEN_HELP}")
            return ConfigError(f"{self.where} refused the token (401: {message}): {TOKEN_HELP}")
        if status == 403:
            return ConfigError(
                f"{self.where} refused {what} for this token (403: {message}): "
                "its plan may not cover the ticker, interval or range"
            )
        if status == 404 and ticker:
            return DataError(f"unknown ticker {ticker!r} on {self.where} (404: {message})")
        if status == 402:
            return ExchangeError(f"{self.where} refused {what}: the token's request quota is used up (402: {message})")
        return ExchangeError(f"{self.where} refused {what} ({status}: {message})")

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ExchangeError(f"malformed answer from {self.where} for {what}: not JSON") from None
        if not isinstance(body, dict):
            raise ExchangeError(f"malformed answer from {self.where} for {what}: not a JSON object")
        return body

    @staticmethod
    def _error_body(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {"message": response.text[:200]}
        return body if isinstance(body, dict) else {"message": str(body)[:200]}

    def _message(self, body: dict[str, Any]) -> str:
        text = " ".join(str(body.get("message") or body.get("error") or "no message").split())
        return self._scrub(text[:200])

    def _scrub(self, text: str) -> str:
        """Never the token in a message, whatever brapi or the network echoed."""
        return text.replace(self._token, "***") if self._token else text

    def _retry_after(self, response: httpx.Response, default_s: float) -> float:
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return default_s
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError):
            return default_s

    async def _hold_back(self, what: str) -> None:
        """Wait out a 429's Retry-After; fail at once if it is too long to wait now."""
        left = self._not_before - time.monotonic()
        if left > RETRY_AFTER_MAX_S:
            raise ExchangeError(f"{self.where} is rate limiting requests for another {left:.0f} s ({what})")
        if left > 0:
            await asyncio.sleep(left)


class B3Venue(Venue):
    """B3 through brapi: session candles, REST polling only (brapi has no stream)."""

    page_limit = 1_000_000  # one answer holds the whole range
    poll_when_due = True  # every request counts against the token's quota

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        b3, market = settings.market.b3, settings.market
        self.name, self.timeframe = SOURCE, settings.exchange.timeframe
        interval = b3.intervals.get(self.timeframe)
        if interval is None:
            offered = ", ".join(b3.intervals)
            raise ConfigError(f"timeframe {self.timeframe!r} is not offered for B3 through brapi (offered: {offered})")
        self.interval = interval
        self.sessions = b3_calendar(b3, parse_timeframe(self.timeframe))
        self.calendar = self.sessions
        self.delay_s = b3.delay_s
        self.client = BrapiClient(
            b3.base_url,
            env_token(settings),
            timeout_s=market.request_timeout_s,
            attempts=market.request_attempts,
            backoff_s=market.reconnect_backoff_s,
            transport=transport,
        )
        self.where = self.client.where
        self._dropped: set[tuple[str, int]] = set()  # off-session candles already logged

    async def load_symbols(self, symbols: list[str]) -> None:
        for symbol in symbols:
            await self.client.quote(symbol)

    async def candles(self, symbol: str, since_ms: int, limit: int, now_s: float) -> list[Row]:
        days = (self.sessions.day_of(now_s * 1000) - self.sessions.day_of(since_ms)).days + 1
        raw = await self.client.history(symbol, self.interval, range_for(max(1, days)))
        rows = self.rows(symbol, raw)
        return [r for r in rows if r[0] >= since_ms][:limit]

    def rows(self, symbol: str, raw: list[Any]) -> list[Row]:
        """brapi's candles as rows at their calendar open times, oldest first. A candle without
        prices (no trade) is left out; one outside every session is left out and logged once."""
        what = f"candles of {symbol}"
        clean: dict[int, Row] = {}
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise ExchangeError(f"malformed answer from {self.where} for {what}: candle {i} is {item!r:.80}")
            fields = [item.get(k) for k in ("date", "open", "high", "low", "close", "volume")]
            if fields[0] is not None and any(v is None for v in fields[1:5]):
                continue  # no trade in that interval: brapi sends it empty
            try:
                values = [float(v) if v is not None else 0.0 for v in fields[:5]] + [float(fields[5] or 0.0)]
                if fields[0] is None or not all(math.isfinite(v) for v in values) or values[2] < values[3]:
                    raise ValueError("not a candle")
                stamp_ms = int(values[0] * 1000)
                seq = self.calendar.seq_at(stamp_ms)
            except (TypeError, ValueError, OverflowError, DataError):
                raise ExchangeError(
                    f"malformed answer from {self.where} for {what}: candle {i} is {item!r:.80}"
                ) from None
            if seq is None:
                self._off_session(symbol, stamp_ms)
                continue
            clean[seq] = [float(self.calendar.open_ms(seq)), *values[1:]]
        return [clean[s] for s in sorted(clean)]

    def _off_session(self, symbol: str, stamp_ms: int) -> None:
        if (symbol, stamp_ms) in self._dropped:
            return
        self._dropped.add((symbol, stamp_ms))
        day = self.sessions.day_of(stamp_ms)
        log.warning(
            "market_off_session_candle",
            source=SOURCE,
            symbol=symbol,
            open_s=stamp_ms // 1000,
            day=date.isoformat(day),
            hint="a session the calendar lacks? see market.b3.open_days and special_hours",
        )

    async def close(self) -> None:
        await self.client.close()
