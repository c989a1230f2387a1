"""Helpers of the market-data tests: a collector on the local fake Binance (REST and its
WebSocket kline stream), through the real ccxt client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from fake_exchange import FakeBinance

from sorte.config import ExchangeSettings, MarketSettings, RuntimeSettings, Settings
from sorte.market import Collector, MarketAlert
from sorte.runtime.values import Bar

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FAST = {
    "prefetch_bars": 20,
    "poll_interval_s": 0.2,
    "reconnect_backoff_s": 0.05,
    "reconnect_backoff_max_s": 0.2,
    "request_timeout_s": 1.0,
    "request_attempts": 2,
}


class ExchangeTime:
    """The local clock of the collector: the fake exchange's clock, ``skew_s`` off."""

    def __init__(self, fake: FakeBinance, skew_s: float = 0.0) -> None:
        self.fake, self.skew_s = fake, skew_s

    def now(self) -> float:
        return self.fake.now_ms / 1000 + self.skew_s

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def closed_port() -> int:
    """A local port nothing listens on: a WebSocket endpoint that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def market_settings(settings: Settings, fake: FakeBinance, ws_url: str | None = None, **market: Any) -> Settings:
    if ws_url is None and fake.stream is not None:
        ws_url = fake.ws_url
    return settings.model_copy(
        update={
            "exchange": ExchangeSettings(base_url=fake.url, ws_url=ws_url, timeframe="1m"),
            "runtime": RuntimeSettings(feed="ccxt", symbols=SYMBOLS),
            "market": MarketSettings(**{**FAST, "websocket": ws_url is not None, **market}),
        }
    )


def make_collector(
    settings: Settings, fake: FakeBinance, skew_s: float = 0.0, alerts: list[MarketAlert] | None = None
) -> Collector:
    return Collector(settings, clock=ExchangeTime(fake, skew_s), on_alert=None if alerts is None else alerts.append)


async def until(condition: Callable[[], bool], timeout_s: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def take(queue: asyncio.Queue[Bar], n: int, timeout_s: float = 15.0) -> list[Bar]:
    """The next ``n`` bars, or fail after ``timeout_s``."""
    return [await asyncio.wait_for(queue.get(), timeout_s) for _ in range(n)]


def drain(queue: asyncio.Queue[Bar]) -> list[Bar]:
    bars = []
    while not queue.empty():
        bars.append(queue.get_nowait())
    return bars


def by_symbol(bars: list[Bar]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {s: [] for s in SYMBOLS}
    for bar in bars:
        seen[bar.symbol].append(bar.seq)
    return seen


def klines_requests(fake: FakeBinance) -> list[dict[str, str]]:
    return [p for m, path, p in fake.requests if m == "GET" and path == "/api/v3/klines"]


async def running(collector: Collector) -> asyncio.Task[None]:
    task = asyncio.create_task(collector.run())
    await until(lambda: collector.mode != "starting" or task.done(), what="the collector to start")
    if task.done():
        task.result()
    return task


async def streaming(collector: Collector, fake: FakeBinance) -> tuple[asyncio.Queue[Bar], asyncio.Task[None]]:
    """A running collector whose kline streams the fake exchange has subscribed."""
    queue = collector.subscribe()
    task = await running(collector)
    assert fake.stream is not None
    stream = fake.stream
    await until(lambda: len(stream.subscribed()) == len(SYMBOLS), what="the kline streams")
    return queue, task


async def stop(collector: Collector, task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await collector.close()
