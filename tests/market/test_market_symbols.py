"""A running collector changing its symbols (the commander's pair selection): an added symbol
is checked, prefetched and streamed in the same WebSocket session; a dropped one's bars stop;
an unknown one is refused and nothing changes."""

from __future__ import annotations

import asyncio

import pytest
from fake_exchange import FakeBinance
from market_env import SYMBOLS, drain, make_collector, market_settings, stop, streaming, take, until

from sorte.errors import DataError


def test_symbols_added_and_dropped_while_streaming(settings) -> None:
    fake = FakeBinance((*SYMBOLS, "SOL/USDT")).start().start_stream()
    collector = make_collector(market_settings(settings, fake), fake)

    async def body() -> tuple[list, list, int]:
        queue, task = await streaming(collector, fake)
        try:
            fake.advance(1)
            await take(queue, 2)
            connections = fake.stream.connections
            added = await collector.set_symbols(["BTC/USDT", "SOL/USDT"])
            assert added == ["SOL/USDT"] and collector.symbols == ["BTC/USDT", "SOL/USDT"]
            assert len(collector.history("SOL/USDT", 20)) == 20  # the lookback came with it
            await until(lambda: "solusdt@kline_1m" in fake.stream.subscribed(), what="the SOL stream")
            drain(queue)
            for _ in range(3):
                fake.advance(1)
                await asyncio.sleep(0.2)
            bars = await take(queue, 6)
            with pytest.raises(DataError):
                await collector.set_symbols(["BTC/USDT", "NOPE/USDT"])
            return bars, collector.symbols, fake.stream.connections - connections
        finally:
            await stop(collector, task)

    try:
        bars, symbols, reconnects = asyncio.run(body())
    finally:
        fake.stop()
    assert {b.symbol for b in bars} == {"BTC/USDT", "SOL/USDT"}  # no ETH/USDT bar after its drop
    sol = [b.seq for b in bars if b.symbol == "SOL/USDT"]
    assert sol == [fake.seq(i) for i in range(51, 54)]  # from the candle after the prefetch, in order
    assert symbols == ["BTC/USDT", "SOL/USDT"]  # the refused change changed nothing
    assert reconnects == 0  # the same WebSocket session took the new symbol
