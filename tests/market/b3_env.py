"""Helpers of the B3 tests: a collector on ``runtime.feed=b3`` against the local fake brapi,
on the fake's clock. The fake's week: Thursday 12 February 2026, Friday 13, the weekend, Carnival
Monday 16 and Tuesday 17 (closed), Ash Wednesday 18 (opens at 13:00); 1-hour candles, sessions
from 10:00 to 18:00 São Paulo time (New York is on standard time in February)."""

from __future__ import annotations

import asyncio
from datetime import date, time
from typing import Any

from fake_brapi import TOKEN, FakeBrapi

from sorte.config import ExchangeSettings, MarketSettings, RuntimeSettings, Settings
from sorte.market import Collector, MarketAlert
from sorte.runtime.values import Bar
from sorte.settings.b3 import B3Settings
from tests.market.market_env import FAST

TICKERS = ["PETR4", "VALE3"]
THU, FRI, SAT, MON, TUE, WED = (date(2026, 2, d) for d in (12, 13, 14, 16, 17, 18))
CARNIVAL = frozenset({MON, TUE})
ASH_WEDNESDAY = {WED: time(13)}


def fake_b3(**options: Any) -> FakeBrapi:
    return FakeBrapi(tuple(TICKERS), closed=CARNIVAL, late_open=ASH_WEDNESDAY, **options).start()


class BrapiTime:
    """The collector's local clock: the fake brapi's."""

    def __init__(self, fake: FakeBrapi) -> None:
        self.fake = fake

    def now(self) -> float:
        return self.fake.now_ms / 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def b3_settings(
    settings: Settings, fake: FakeBrapi, token: str | None = TOKEN, timeframe: str = "1h", **market: Any
) -> Settings:
    b3 = B3Settings(base_url=fake.url, token=token, **market.pop("b3", {}))
    return settings.model_copy(
        update={
            "exchange": ExchangeSettings(timeframe=timeframe),
            "runtime": RuntimeSettings(feed="b3", symbols=TICKERS),
            "market": MarketSettings(**{**FAST, "websocket": False, "stale_intervals": 2, **market, "b3": b3}),
        }
    )


def b3_collector(settings: Settings, fake: FakeBrapi, alerts: list[MarketAlert] | None = None) -> Collector:
    return Collector(settings, clock=BrapiTime(fake), on_alert=None if alerts is None else alerts.append)


def opens_of(bars: list[Bar], symbol: str) -> list[int]:
    return [int(b.ts * 1000) for b in bars if b.symbol == symbol]


def seqs_of(bars: list[Bar], symbol: str) -> list[int]:
    return [b.seq for b in bars if b.symbol == symbol]
