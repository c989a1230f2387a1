"""A small local stand-in for brapi's HTTP API (https://brapi.dev), for tests of the B3 source.

It speaks the one endpoint Sorte uses, ``GET /api/quote/{tickers}``: without ``range`` the
quote of each ticker, with ``range`` and ``interval`` its candles (``historicalDataPrice``) as
brapi returns them: ``date`` in epoch seconds, the last candle still in progress (partial
values) while a session runs. ``range`` counts calendar days back from the server's today (the
strictest reading: ``1d`` is today only), so a client that asks for too short a range misses
candles here.

The server has its own clock (``now_ms``), which tests move, and its own sessions, written out
independently of Sorte's B3 calendar: weekdays from ``opens`` to ``closes`` (São Paulo time),
except the days in ``closed``, and ``late_open`` days opening later. Only session candles exist.

Switches: a ``token`` it requires (``Authorization: Bearer`` or ``?token=``; 401 otherwise),
``down`` (503 to everything), ``errors`` (the HTTP statuses of the next answers, a 429 with
``Retry-After: retry_after``), ``malformed`` (a raw body instead of the next answer),
``stalled_at_ms`` (candles opening at or after it are not served yet: a data feed that lags) and
``missing`` (candles never served). Every request is recorded (the token replaced by whether it
was right).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
TOKEN = "brapi-test-token-never-logged"
INTERVALS = {"1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "90m": 5400, "1d": 86_400}
RANGE_DAYS = {"1d": 1, "2d": 2, "5d": 5, "7d": 7, "1mo": 30, "3mo": 91, "6mo": 182, "1y": 365, "2y": 730, "5y": 1826}


def local_ms(day: date, at: time) -> int:
    return int(datetime.combine(day, at, tzinfo=SAO_PAULO).timestamp() * 1000)


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, str]  # without the token
    authorized: bool  # the right token came with it


class FakeBrapi:
    def __init__(
        self,
        symbols: tuple[str, ...] = ("PETR4", "VALE3"),
        interval: str = "1h",
        now: datetime | None = None,
        opens: time = time(10),
        closes: time = time(18),
        closed: frozenset[date] = frozenset(),
        late_open: dict[date, time] | None = None,
        token: str | None = TOKEN,
    ) -> None:
        self.symbols = list(symbols)
        self.interval = interval
        self.interval_ms = INTERVALS[interval] * 1000
        self.opens, self.closes = opens, closes
        self.closed, self.late_open = set(closed), dict(late_open or {})
        self.token = token
        self.lock = threading.RLock()
        start = now or datetime(2026, 2, 12, 12, 30, tzinfo=SAO_PAULO)  # a Thursday, mid-session
        self.now_ms = int(start.timestamp() * 1000)
        self.requests: list[Request] = []
        self.down = False
        self.errors: list[int] = []
        self.retry_after = "1"
        self.malformed: str | None = None
        self.stalled_at_ms: int | None = None
        self.missing: set[tuple[str, int]] = set()
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeBrapi:
        handler = type("Handler", (_Handler,), {"brapi": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # -- the clock ----------------------------------------------------------------------------
    def set_time(self, day: date, at: time) -> None:
        with self.lock:
            self.now_ms = local_ms(day, at)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now_ms += int(seconds * 1000)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, SAO_PAULO)

    # -- sessions and candles -----------------------------------------------------------------
    def session(self, day: date) -> tuple[int, int] | None:
        if day.weekday() >= 5 or day in self.closed:
            return None
        return local_ms(day, self.late_open.get(day, self.opens)), local_ms(day, self.closes)

    def opens_on(self, day: date) -> list[int]:
        """The open times of the day's candles (every one, served or not)."""
        session = self.session(day)
        if session is None:
            return []
        if self.interval == "1d":
            return [session[0]]
        return list(range(session[0], session[1], self.interval_ms))

    def close_of(self, open_ms: int) -> int:
        session = self.session(datetime.fromtimestamp(open_ms / 1000, SAO_PAULO).date())
        assert session is not None
        return min(open_ms + self.interval_ms, session[1]) if self.interval != "1d" else session[1]

    def candles_between(self, first: date, last: date) -> list[int]:
        day, opens = first, []
        while day <= last:
            opens += self.opens_on(day)
            day += timedelta(days=1)
        return opens

    def closed_candles(self, symbol: str, first: date, last: date) -> list[int]:
        """Open times of the candles closed by now on those days (what a collector should emit)."""
        return [t for t in self.candles_between(first, last) if self.close_of(t) <= self.now_ms]

    def values(self, symbol: str, open_ms: int) -> list[float]:
        """The final (o, h, l, c, v) of a candle."""
        k = self.symbols.index(symbol) if symbol in self.symbols else 0
        i = open_ms // self.interval_ms
        mid = 30.0 * (k + 1) * (1 + 0.03 * math.sin(i / 7))
        o, c = round(mid * 0.998, 4), round(mid * 1.002, 4)
        return [o, round(c * 1.003, 4), round(o * 0.997, 4), c, float(1000 + i % 13)]

    def history(self, symbol: str, range_: str) -> list[dict[str, Any]]:
        today = self.now.date()
        days = RANGE_DAYS.get(range_, 100_000)
        first = max(today - timedelta(days=days - 1), date(2000, 1, 1))
        out = []
        for t in self.candles_between(first, today):
            if t > self.now_ms or (symbol, t) in self.missing:
                continue
            if self.stalled_at_ms is not None and t >= self.stalled_at_ms:
                continue
            o, h, lo, c, v = self.values(symbol, t)
            if self.close_of(t) > self.now_ms:  # in progress: part of the candle has traded
                h, lo, c, v = max(o, (o + c) / 2), min(o, (o + c) / 2), (o + c) / 2, v / 4
            out.append(
                {"date": t // 1000, "open": o, "high": h, "low": lo, "close": c, "volume": v, "adjustedClose": c}
            )
        return out

    def candle_requests(self) -> list[Request]:
        return [r for r in self.requests if "range" in r.params]

    # -- answers ------------------------------------------------------------------------------
    def answer(self, path: str, params: dict[str, str], authorization: str) -> tuple[int, dict[str, str], str]:
        given = params.pop("token", None) or authorization.removeprefix("Bearer ").strip() or None
        with self.lock:
            self.requests.append(Request(path, dict(params), given == self.token))
            error = self.errors.pop(0) if self.errors else 0
            malformed, self.malformed = self.malformed, None
        if self.down:
            error = error or 503
        if error == 429:
            return 429, {"Retry-After": self.retry_after}, _json(_error("Too many requests"))
        if error:
            return error, {}, _json(_error(f"fake error {error}"))
        if malformed is not None:
            return 200, {}, malformed
        if not path.startswith("/api/quote/"):
            return 404, {}, _json(_error("not found"))
        if self.token is not None and given != self.token:
            message = "O seu token é inválido, por favor, verifique o seu token em brapi.dev/dashboard"
            return 401, {}, _json(_error(message))
        tickers = [unquote(t).upper() for t in path.removeprefix("/api/quote/").split(",") if t]
        unknown = [t for t in tickers if t not in self.symbols]
        if unknown:
            return 404, {}, _json(_error(f"Não encontramos a ação {unknown[0]}"))
        range_, interval = params.get("range"), params.get("interval")
        if range_ is not None and interval != self.interval:
            return 400, {}, _json(_error(f"interval {interval!r} inválido"))
        with self.lock:
            results = []
            for t in tickers:
                result: dict[str, Any] = {"symbol": t, "currency": "BRL", "shortName": t}
                if range_ is not None:
                    result.update(usedInterval=interval, usedRange=range_, historicalDataPrice=self.history(t, range_))
                results.append(result)
            requested = datetime.fromtimestamp(self.now_ms / 1000, SAO_PAULO).isoformat()
        return 200, {}, _json({"results": results, "requestedAt": requested, "took": 1})


def _error(message: str) -> dict[str, Any]:
    return {"error": True, "message": message}


def _json(body: Any) -> str:
    return json.dumps(body)


class _Handler(BaseHTTPRequestHandler):
    brapi: FakeBrapi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        status, headers, body = self.brapi.answer(parts.path, params, self.headers.get("Authorization", ""))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
