"""A small local stand-in for Binance's spot REST API, for tests of the ccxt feed and broker.

It speaks just the endpoints ccxt's ``binance`` class calls for loading spot markets,
klines, and placing, querying and cancelling spot orders (``exchangeInfo``, ``time``,
``klines``, ``order`` POST/GET/DELETE, ``openOrders``, ``myTrades``, ``account``, whose
balances fills move, fees in the quote currency), checks the HMAC
signature of private calls like the real exchange, and records every request. Switches
simulate the failures a live runtime meets: a symbol missing from the exchange, the server
down, answers slower than the client's timeout, malformed JSON, transient 5xx errors.

``start_stream`` adds Binance's spot WebSocket market streams (``wss://stream.binance.com/ws``):
a client SUBSCRIBEs to ``<symbol>@kline_<interval>`` and receives ``kline`` events as the
exchange's clock moves on: each closed candle's final snapshot (``"x": true``), then the new
candle's first one. ``drop_streams`` cuts every socket mid-stream; ``down`` takes the whole
exchange down (REST answers 503, sockets are cut and refused) until it is set back.

The exchange has its own clock (``now_ms``) that tests move forward; the last candle
returned by ``klines`` is the in-progress one, as on the real exchange.

``GET /api/v3/ticker/24hr`` (what ccxt's ``fetch_tickers`` and ``fetch_ticker`` call on spot,
bid and ask included, so no ``bookTicker``) answers every listed symbol, or the ``symbol=`` /
``symbols=["A","B"]`` ones. A symbol's ticker is derived from its candles of the last 24 h on
the exchange's clock; ``set_ticker`` overrides any field (a volume, a spread, a field missing),
and ``add_symbols`` lists many more symbols at once (2,000 is cheap) with given tickers and no
candles.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

START_MS = 1_700_000_040_000  # a minute boundary
API_KEY = "test-key"
API_SECRET = "test-secret-never-logged"


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


class FakeClock:
    """The exchange's time, as a runtime ``Clock``: the feed decides which candles are
    closed with it. Sleeping (the runtime's batch interval) moves the exchange on by
    ``bars_per_sleep`` bars, so a runtime sees exactly one new bar per batch when it is 1."""

    def __init__(self, exchange: FakeBinance) -> None:
        self.exchange = exchange
        self.bars_per_sleep = 0

    def now(self) -> float:
        return self.exchange.now_ms / 1000

    async def sleep(self, seconds: float) -> None:
        self.exchange.advance(self.bars_per_sleep)
        await asyncio.sleep(0)


class FakeBinance:
    def __init__(
        self,
        symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"),
        interval_s: int = 60,
        bars: int = 50,
        future: int = 200,
    ):
        self.interval_ms = interval_s * 1000
        self.symbols = list(symbols)
        self.lock = threading.RLock()
        self.now_ms = START_MS + bars * self.interval_ms + self.interval_ms // 2  # mid-way through bar ``bars``
        self.candles: dict[str, dict[int, list[float]]] = {market_id(s): {} for s in symbols}
        for k, sym in enumerate(self.symbols):
            for i in range(bars + future):
                self.candles[market_id(sym)][START_MS + i * self.interval_ms] = self._candle(i, 100.0 * (k + 1))
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # by client order id
        self.trades: list[dict[str, Any]] = []
        self.missing: set[str] = set()  # symbols hidden from exchangeInfo
        self.delays: dict[str, list[float]] = defaultdict(list)  # "METHOD path" -> delays of the next answers
        self.errors: dict[str, list[int]] = defaultdict(list)  # "METHOD path" -> HTTP statuses of the next answers
        # "METHOD path" -> how long each of the next requests waits before the matching engine
        # takes it (a queue at the exchange): the client may give up, the order still lands.
        self.holds: dict[str, list[float]] = defaultdict(list)
        self.malformed: dict[str, str] = {}  # "METHOD path" -> raw body returned instead
        self.delayed_in_flight = self.max_delayed_in_flight = 0  # delayed answers being waited on at once
        self.fill_market = True  # market orders fill at once; else they rest until ``fill``
        # Market orders fill at the open of the candle after the one their client order id names
        # (``e<epoch>:<seq>:...``, the bar they were decided on): the paper broker's model, so a
        # run's book does not depend on when an order arrived (the chaos soak's reference).
        self.fill_at_decision_open = False
        # What a hashed exchange id (a long client order id, ``sorte-<hash>``) stands for: the
        # client's own id, for ``fill_at_decision_open`` (the soak reads the gateway's journal).
        self.resolve_client_id: Callable[[str], str] = lambda cid: cid
        self.fee_rate = 0.001
        # What the account holds; fills move it (fees are charged in the quote currency).
        self.balances: dict[str, float] = defaultdict(float, {"USDT": 10_000.0})
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.server: ThreadingHTTPServer | None = None
        self.clock = FakeClock(self)
        self.down = False  # the whole exchange is unreachable: REST answers 503, sockets are refused
        self.latency_s = 0.0  # added to every REST answer: a network's round trip (benchmarks)
        self.stream: KlineStream | None = None
        self.ticker_fields: dict[str, dict[str, Any]] = {}  # symbol -> ticker fields set by the test

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeBinance:
        handler = type("Handler", (_Handler,), {"exchange": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def start_stream(self) -> FakeBinance:
        """Serve the WebSocket kline streams too (at ``ws_url``)."""
        self.stream = KlineStream(self).start()
        return self

    @property
    def ws_url(self) -> str:
        assert self.stream is not None
        return f"ws://127.0.0.1:{self.stream.port}"

    def drop_streams(self) -> int:
        """Cut every WebSocket connection, as a network failure does; returns how many."""
        return self.stream.drop() if self.stream is not None else 0

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            self.drop_streams()

    def stop(self) -> None:
        """Take the server down: from now on connections are refused."""
        if self.stream is not None:
            self.stream.stop()
        self._stopping.set()  # wake handlers sleeping in a simulated delay
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for conn in list(self._connections):  # kept-alive client connections die too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- market data -------------------------------------------------------------------
    @staticmethod
    def _candle(i: int, base: float) -> list[float]:
        mid = base * (1 + 0.05 * math.sin(i / 5))
        o, c = mid * 0.999, mid * 1.001
        return [o, max(o, c) * 1.002, min(o, c) * 0.998, c, 10.0 + i % 7]

    def advance(self, bars: int = 1) -> None:
        with self.lock:
            first = self.current_index()
            self.now_ms += bars * self.interval_ms
            last = self.current_index()
        if self.stream is not None and not self.down and last > first:
            self.stream.publish(range(first, last + 1))

    def kline(self, mid: str, t: int) -> list[Any]:
        """Candle ``t`` of market ``mid`` as Binance's REST ``klines`` row: partial while the
        candle is in progress, as the exchange shows it."""
        o, h, lo, close, v = self.candles[mid][t]
        if t + self.interval_ms > self.now_ms:  # in progress: only part of the bar has traded
            h, lo, close, v = max(o, close), min(o, close), (o + close) / 2, v / 3
        end, text = t + self.interval_ms - 1, [f"{x:.8f}" for x in (o, h, lo, close, v, v * close)]
        return [t, *text[:5], end, text[5], 10, "0", "0", "0"]

    def bar_open_ms(self, index: int) -> int:
        return START_MS + index * self.interval_ms

    def seq(self, index: int) -> int:
        """The feed's sequence number of candle ``index`` (open time // interval)."""
        return self.bar_open_ms(index) // self.interval_ms

    def current_index(self) -> int:
        """Index of the in-progress candle."""
        return (self.now_ms - START_MS) // self.interval_ms

    def drop(self, symbol: str, index: int) -> None:
        """Delete one candle (a gap in the exchange's data)."""
        with self.lock:
            self.candles[market_id(symbol)].pop(self.bar_open_ms(index), None)

    def last_price(self, mid: str) -> float:
        opened = [t for t in self.candles[mid] if t <= self.now_ms]
        return self.candles[mid][max(opened)][3]

    # -- 24 h tickers ------------------------------------------------------------------
    def set_ticker(self, symbol: str, **fields: Any) -> None:
        """Override fields of a symbol's 24 h ticker: ``last``, ``open``, ``high``, ``low``,
        ``base_volume``, ``quote_volume``, ``bid``, ``ask``, ``spread_pct`` (bid and ask around
        ``last``: ``(ask - bid) / ask`` in %), ``change_pct``. ``None`` leaves the field out."""
        with self.lock:
            self.ticker_fields.setdefault(symbol, {}).update(fields)

    def add_symbols(self, tickers: dict[str, dict[str, Any]]) -> None:
        """List more symbols, each with the ticker fields given (as ``set_ticker`` takes them)
        and no candles: its klines are empty."""
        with self.lock:
            listed = set(self.symbols)
            for symbol, fields in tickers.items():
                if symbol not in listed:
                    self.symbols.append(symbol)
                    listed.add(symbol)
                self.candles.setdefault(market_id(symbol), {})
                self.ticker_fields.setdefault(symbol, {}).update(fields)

    def ticker_values(self, symbol: str) -> dict[str, Any]:
        """The symbol's 24 h figures: from its candles of the last 24 h, then the overrides."""
        mid = market_id(symbol)
        rows = [self.kline(mid, t) for t in sorted(self.candles[mid]) if self.now_ms - 86_400_000 < t <= self.now_ms]
        values: dict[str, Any] = {"spread_pct": 0.02}
        if rows:
            values.update(
                open=float(rows[0][1]),
                high=max(float(r[2]) for r in rows),
                low=min(float(r[3]) for r in rows),
                last=float(rows[-1][4]),
                base_volume=sum(float(r[5]) for r in rows),
                quote_volume=sum(float(r[7]) for r in rows),
            )
        values.update(self.ticker_fields.get(symbol, {}))
        last, spread = values.get("last"), values.get("spread_pct")
        if last is not None and spread is not None:
            values.setdefault("ask", last * (1 + spread / 200))
            if values["ask"] is not None:
                values.setdefault("bid", values["ask"] * (1 - spread / 100))
        if last is not None and values.get("open"):
            values.setdefault("change_pct", (last - values["open"]) / values["open"] * 100)
        return values

    def ticker(self, symbol: str) -> dict[str, Any]:
        """Binance's ``ticker/24hr`` entry of one symbol (fields set to None are left out)."""
        v = self.ticker_values(symbol)
        binance = {
            "lastPrice": v.get("last"),
            "openPrice": v.get("open"),
            "highPrice": v.get("high"),
            "lowPrice": v.get("low"),
            "bidPrice": v.get("bid"),
            "askPrice": v.get("ask"),
            "volume": v.get("base_volume"),
            "quoteVolume": v.get("quote_volume"),
            "priceChangePercent": v.get("change_pct"),
        }
        entry: dict[str, Any] = {"symbol": market_id(symbol)}
        entry.update({k: f"{x:.8f}" for k, x in binance.items() if x is not None})
        if "lastPrice" in entry and "openPrice" in entry:
            entry["priceChange"] = f"{v['last'] - v['open']:.8f}"
        entry.update(bidQty="1.00000000", askQty="1.00000000", count=100)
        entry.update(openTime=self.now_ms - 86_400_000, closeTime=self.now_ms)
        return entry

    # -- orders ------------------------------------------------------------------------
    def posted_orders(self) -> list[dict[str, str]]:
        return [p for m, path, p in self.requests if m == "POST" and path == "/api/v3/order"]

    def fill(self, client_id: str, price: float | None = None) -> None:
        """Fill a resting order completely."""
        with self.lock:
            order = self.orders[client_id]
            self._execute(order, price or float(order["price"]) or self.last_price(order["symbol"]))

    def _assets(self, mid: str) -> tuple[str, str]:
        symbol = next(s for s in self.symbols if market_id(s) == mid)
        base, _, quote = symbol.partition("/")
        return base, quote

    def _market_price(self, mid: str, cid: str) -> float:
        decided = re.match(r"^e\d+:(\d+):", self.resolve_client_id(cid))
        if self.fill_at_decision_open and decided:
            candle = self.candles[mid].get((int(decided.group(1)) + 1) * self.interval_ms)
            if candle is not None:
                return candle[0]
        return self.last_price(mid)

    def open_orders(self, p: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            return [
                _public(o)
                for o in self.orders.values()
                if o["status"] in ("NEW", "PARTIALLY_FILLED") and p.get("symbol") in (None, o["symbol"])
            ]

    def plant_order(self, symbol: str, side: str, qty: float, price: float, client_id: str) -> None:
        """A resting limit order placed behind Sorte's back (by hand, another bot)."""
        status, answer = self.place(
            {
                "symbol": market_id(symbol),
                "side": side,
                "type": "LIMIT",
                "quantity": f"{qty:.8f}",
                "price": f"{price:.8f}",
                "newClientOrderId": client_id,
            }
        )
        assert status == 200, answer

    def _execute(self, order: dict[str, Any], price: float) -> None:
        qty = float(order["origQty"])
        quote = quote_qty = qty * price
        fee = quote * self.fee_rate
        trade = {
            "symbol": order["symbol"],
            "id": next(self._ids),
            "orderId": order["orderId"],
            "orderListId": -1,
            "price": f"{price:.8f}",
            "qty": f"{qty:.8f}",
            "quoteQty": f"{quote:.8f}",
            "commission": f"{fee:.8f}",
            "commissionAsset": "USDT",
            "time": self.now_ms,
            "isBuyer": order["side"] == "BUY",
            "isMaker": order["type"] == "LIMIT",
            "isBestMatch": True,
        }
        self.trades.append(trade)
        base_asset, quote_asset = self._assets(order["symbol"])
        side = 1 if order["side"] == "BUY" else -1
        self.balances[base_asset] += side * qty
        self.balances[quote_asset] -= side * quote_qty + fee
        order.update(status="FILLED", executedQty=f"{qty:.8f}", cummulativeQuoteQty=f"{quote:.8f}")
        order["updateTime"] = self.now_ms
        order["_fills"] = [
            {
                "price": trade["price"],
                "qty": trade["qty"],
                "commission": trade["commission"],
                "commissionAsset": "USDT",
                "tradeId": trade["id"],
            }
        ]

    def place(self, p: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            cid = p.get("newClientOrderId") or f"x-{next(self._ids)}"
            if cid in self.orders and self.orders[cid]["status"] in ("NEW", "PARTIALLY_FILLED"):
                return 400, {"code": -2010, "msg": "Duplicate order sent."}
            if p["symbol"] not in self.candles or p["symbol"] in {market_id(s) for s in self.missing}:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            order = {
                "symbol": p["symbol"],
                "orderId": next(self._ids),
                "orderListId": -1,
                "clientOrderId": cid,
                "price": p.get("price", "0.00000000"),
                "origQty": p["quantity"],
                "executedQty": "0.00000000",
                "cummulativeQuoteQty": "0.00000000",
                "status": "NEW",
                "timeInForce": p.get("timeInForce", "GTC"),
                "type": p["type"],
                "side": p["side"],
                "stopPrice": "0.00000000",
                "icebergQty": "0.00000000",
                "time": self.now_ms,
                "updateTime": self.now_ms,
                "isWorking": True,
                "workingTime": self.now_ms,
                "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "_fills": [],
            }
            self.orders[cid] = order
            if p["type"] == "MARKET" and self.fill_market:
                self._execute(order, self._market_price(p["symbol"], cid))
            return 200, {**_public(order), "transactTime": self.now_ms, "fills": order["_fills"]}

    def query(self, p: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            order = self._find(p)
            if order is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, _public(order)

    def cancel(self, p: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            order = self._find(p)
            if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return 400, {"code": -2011, "msg": "Unknown order sent."}
            order["status"] = "CANCELED"
            return 200, _public(order)

    def _find(self, p: dict[str, str]) -> dict[str, Any] | None:
        if "origClientOrderId" in p:
            return self.orders.get(p["origClientOrderId"])
        by_id = {str(o["orderId"]): o for o in self.orders.values()}
        return by_id.get(p.get("orderId", ""))


def _public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    exchange: FakeBinance
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.exchange._connections.add(self.connection)

    def finish(self) -> None:
        self.exchange._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        ex = self.exchange
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        raw = parts.query if method != "POST" else body
        params = dict(parse_qsl(raw, keep_blank_values=True))
        key = f"{method} {parts.path}"
        with ex.lock:
            ex.requests.append((method, parts.path, params))
            delay = ex.delays[key].pop(0) if ex.delays[key] else 0.0
            error = ex.errors[key].pop(0) if ex.errors[key] else 0
            malformed = ex.malformed.get(key)
            hold = ex.holds[key].pop(0) if ex.holds[key] else 0.0
        if ex.latency_s:
            time.sleep(ex.latency_s)
        if hold and ex._stopping.wait(hold):
            return
        if ex.down:
            error = 503
        if error:  # the request never reached the matching engine
            return self._send(error, "<html><body>503 Service Temporarily Unavailable</body></html>")
        if parts.path.startswith("/api/v3/") and "signature" in params and not self._signed(raw):
            status, payload = 401, {"code": -1022, "msg": "Signature for this request is not valid."}
        elif "timestamp" in params and time.time() * 1000 > int(params["timestamp"]) + int(
            params.get("recvWindow", 5000)
        ):  # Binance refuses a signed request that reaches the engine after its window
            status, payload = 400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        else:
            status, payload = self._route(method, parts.path, params)
        # A delay comes after the work: an order placed whose answer is late, like the real thing.
        if delay:
            with ex.lock:
                ex.delayed_in_flight += 1
                ex.max_delayed_in_flight = max(ex.max_delayed_in_flight, ex.delayed_in_flight)
            try:
                if ex._stopping.wait(delay):
                    return
            finally:
                with ex.lock:
                    ex.delayed_in_flight -= 1
        if malformed is not None:
            status, payload = 200, malformed
        self._send(status, payload)

    def _signed(self, raw: str) -> bool:
        query, _, signature = raw.rpartition("&signature=")
        expected = hmac.new(API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        return self.headers.get("X-MBX-APIKEY") == API_KEY and hmac.compare_digest(signature, expected)

    def _route(self, method: str, path: str, p: dict[str, str]) -> tuple[int, Any]:
        ex = self.exchange
        routes = {
            ("GET", "/api/v3/ping"): lambda: (200, {}),
            ("GET", "/api/v3/time"): lambda: (200, {"serverTime": ex.now_ms}),
            ("GET", "/api/v3/exchangeInfo"): lambda: (200, self._exchange_info()),
            ("GET", "/api/v3/klines"): lambda: self._klines(p),
            ("GET", "/api/v3/ticker/24hr"): lambda: self._tickers(p),
            ("POST", "/api/v3/order"): lambda: ex.place(p),
            ("GET", "/api/v3/order"): lambda: ex.query(p),
            ("DELETE", "/api/v3/order"): lambda: ex.cancel(p),
            ("GET", "/api/v3/myTrades"): lambda: (200, self._my_trades(p)),
            ("GET", "/api/v3/openOrders"): lambda: (200, ex.open_orders(p)),
            ("GET", "/api/v3/account"): lambda: (200, self._account()),
        }
        route = routes.get((method, path))
        if route is None:  # ccxt asked for something a spot-only client should not need
            return 404, {"code": -1, "msg": f"fake exchange has no {method} {path}"}
        return route()

    def _exchange_info(self) -> dict[str, Any]:
        ex = self.exchange
        return {
            "timezone": "UTC",
            "serverTime": ex.now_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s) for s in ex.symbols if s not in ex.missing],
        }

    def _klines(self, p: dict[str, str]) -> tuple[int, Any]:
        ex = self.exchange
        with ex.lock:
            series = ex.candles.get(p.get("symbol", ""))
            if series is None or p["symbol"] in {market_id(s) for s in ex.missing}:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            limit = min(int(p.get("limit", 500)), 1000)
            start = int(p.get("startTime", 0))
            end = int(p.get("endTime", ex.now_ms))
            times = sorted(t for t in series if start <= t <= min(end, ex.now_ms))
            times = times[:limit] if "startTime" in p else times[-limit:]
            return 200, [ex.kline(p["symbol"], t) for t in times]

    def _tickers(self, p: dict[str, str]) -> tuple[int, Any]:
        """All listed symbols, or ``symbol=X`` (one object), or ``symbols=["X","Y"]`` (a list)."""
        ex = self.exchange
        with ex.lock:
            listed = {market_id(s): s for s in ex.symbols if s not in ex.missing}
            if "symbol" in p:
                if p["symbol"] not in listed:
                    return 400, {"code": -1121, "msg": "Invalid symbol."}
                return 200, ex.ticker(listed[p["symbol"]])
            if "symbols" in p:
                try:
                    wanted = json.loads(p["symbols"])
                except ValueError:
                    return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbols'."}
                if not isinstance(wanted, list) or any(w not in listed for w in wanted):
                    return 400, {"code": -1121, "msg": "Invalid symbol."}
                return 200, [ex.ticker(listed[w]) for w in wanted]
            return 200, [ex.ticker(s) for s in listed.values()]

    def _my_trades(self, p: dict[str, str]) -> list[dict[str, Any]]:
        ex = self.exchange
        with ex.lock:
            return [
                t
                for t in ex.trades
                if t["symbol"] == p.get("symbol")
                and ("orderId" not in p or str(t["orderId"]) == p["orderId"])
                and t["time"] >= int(p.get("startTime", 0))
            ][: int(p.get("limit", 500))]

    def _account(self) -> dict[str, Any]:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "accountType": "SPOT",
            "updateTime": self.exchange.now_ms,
            "permissions": ["SPOT"],
            "balances": [
                {"asset": asset, "free": f"{amount:.8f}", "locked": "0.00000000"}
                for asset, amount in sorted(self.exchange.balances.items())
            ],
        }

    def _send(self, status: int, payload: Any) -> None:
        body = payload if isinstance(payload, str) else json.dumps(payload)
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "symbol": market_id(symbol),
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


class KlineStream:
    """Binance's spot market streams over WebSocket (``/ws/<n>``), served by ``websockets`` on
    its own event loop in a thread: SUBSCRIBE/UNSUBSCRIBE by id, ``kline`` events."""

    def __init__(self, exchange: FakeBinance) -> None:
        self.exchange = exchange
        self.loop = asyncio.new_event_loop()
        self.subscriptions: dict[Any, set[str]] = {}  # connection -> stream names
        self.connections = 0  # accepted so far: a reconnect shows up here
        self.sent = 0  # kline events sent
        self.muted: set[int] = set()  # candle indices whose events are lost on the way
        self._server: Any = None

    def start(self) -> KlineStream:
        from websockets.asyncio.server import serve

        async def open_server() -> None:
            self._server = await serve(self._serve, "127.0.0.1", 0, process_request=self._refuse_when_down)

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(open_server(), self.loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    def subscribed(self) -> set[str]:
        return {name for names in list(self.subscriptions.values()) for name in names}

    def drop(self) -> int:
        def abort() -> int:
            for connection in list(self.subscriptions):
                connection.transport.abort()  # no close frame: the network just fails
            dropped = len(self.subscriptions)
            self.subscriptions.clear()
            return dropped

        async def run() -> int:
            return abort()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def publish(self, indices: range) -> None:
        """The events of the candles ``indices`` (all closed but the last, in progress)."""
        ex = self.exchange
        events = []
        with ex.lock:
            for mid in ex.candles:
                for i in indices:
                    t = ex.bar_open_ms(i)
                    if t in ex.candles[mid] and i not in self.muted:
                        events.append((f"{mid.lower()}@kline_1m", self._event(mid, t)))
        asyncio.run_coroutine_threadsafe(self._send(events), self.loop).result(10)

    def _event(self, mid: str, t: int) -> str:
        ex = self.exchange
        row = ex.kline(mid, t)
        kline = dict(zip(("t", "o", "h", "l", "c", "v", "T", "q"), row[:8], strict=True))
        kline.update(s=mid, i="1m", f=1, L=10, n=10, x=t + ex.interval_ms <= ex.now_ms, V="0", Q="0", B="0")
        return json.dumps({"e": "kline", "E": ex.now_ms, "s": mid, "k": kline})

    async def _send(self, events: list[tuple[str, str]]) -> None:
        for connection, names in list(self.subscriptions.items()):
            for name, event in events:
                if name in names:
                    with contextlib.suppress(Exception):  # a connection cut meanwhile
                        await connection.send(event)
                        self.sent += 1

    def _refuse_when_down(self, connection: Any, request: Any) -> Any:
        if self.exchange.down:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "exchange down\n")
        return None

    async def _serve(self, connection: Any) -> None:
        self.connections += 1
        self.subscriptions[connection] = set()
        try:
            async for raw in connection:
                message = json.loads(raw)
                names = self.subscriptions.setdefault(connection, set())
                if message.get("method") == "SUBSCRIBE":
                    names.update(message.get("params", []))
                elif message.get("method") == "UNSUBSCRIBE":
                    names.difference_update(message.get("params", []))
                await connection.send(json.dumps({"result": None, "id": message.get("id")}))
        except Exception:  # a dropped connection ends here
            pass
        finally:
            self.subscriptions.pop(connection, None)
