"""Missed and doubled bars of the market-data collector across WebSocket disconnects.

    .venv/bin/python bench/market_feed.py [--candles 2000] [--symbols 2] [--disconnects 20] [--seed 7] [--out PATH]

The collector (``sorte.market.Collector``) streams closed 1m candles through the real ccxt
client (ccxt.pro's ``watch_ohlcv``) from the local fake Binance of the tests (REST and its
WebSocket kline stream). The fake exchange's clock moves on one candle at a time; at
``--disconnects`` seeded random points every socket is cut, and a few more candles close
before the collector can reconnect (they must come from the REST backfill). At the end each
symbol must have received every candle that closed, once and in order.

Target (issue 17): 0 missed and 0 doubled bars over 2,000 candles per symbol with 20
disconnects. Writes its figures to ``bench/results/market_feed.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_exchange import FakeBinance  # noqa: E402

from sorte.config import ExchangeSettings, MarketSettings, RuntimeSettings, Settings  # noqa: E402
from sorte.market import Collector  # noqa: E402
from sorte.runtime.values import Bar  # noqa: E402

RESULTS = REPO / "bench" / "results" / "market_feed.json"
LOOKBACK = 60


class ExchangeTime:
    """The collector's clock: the fake exchange's."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake

    def now(self) -> float:
        return self.fake.now_ms / 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def wait_for(condition, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def soak(fake: FakeBinance, collector: Collector, candles: int, disconnects: int, seed: int) -> dict:
    rng = random.Random(seed)
    cut_at = set(rng.sample(range(1, candles), disconnects))
    queue = collector.subscribe()
    received: list[Bar] = []
    task = asyncio.create_task(collector.run())
    assert fake.stream is not None
    stream = fake.stream
    await wait_for(lambda: len(stream.subscribed()) == len(fake.symbols), 30)
    first = fake.current_index()  # in progress now: the first candle that must arrive
    started = time.perf_counter()
    for step in range(1, candles + 1):
        if step in cut_at:
            fake.drop_streams()
            fake.advance(rng.randint(1, 3))  # closes while the socket is down: backfilled
        else:
            fake.advance(1)
        await asyncio.sleep(0.002)  # the stream's pace: far faster than a real 1m feed
        while not queue.empty():
            received.append(queue.get_nowait())
        if fake.current_index() - first >= candles:
            break
    last_seq = fake.seq(fake.current_index() - 1)
    expected = {s: list(range(fake.seq(first), last_seq + 1)) for s in fake.symbols}

    def complete() -> bool:
        while not queue.empty():
            received.append(queue.get_nowait())
        return all(any(b.symbol == s and b.seq == last_seq for b in received[::-1]) for s in fake.symbols)

    caught_up = await wait_for(complete, 120)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)
    complete()
    health = collector.health()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    per_symbol = {}
    for symbol, want in expected.items():
        got = [b.seq for b in received if b.symbol == symbol]
        per_symbol[symbol] = {
            "expected": len(want),
            "received": len(got),
            "missed": len(set(want) - set(got)),
            "doubled": len(got) - len(set(got)),
            "out_of_order": sum(1 for a, b in zip(got, got[1:], strict=False) if b <= a),
        }
    return {
        "candles_per_symbol": len(next(iter(expected.values()))),
        "symbols": len(fake.symbols),
        "disconnects": len(cut_at),
        "missed": sum(v["missed"] for v in per_symbol.values()),
        "doubled": sum(v["doubled"] for v in per_symbol.values()),
        "out_of_order": sum(v["out_of_order"] for v in per_symbol.values()),
        "caught_up": caught_up,
        "reconnects": health.reconnects,
        "streamed_candles": health.streamed_candles,
        "backfilled_candles": health.backfilled_candles,
        "gaps": health.gaps,
        "seconds": round(elapsed, 2),
        "per_symbol": per_symbol,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=2000)
    parser.add_argument("--symbols", type=int, default=2)
    parser.add_argument("--disconnects", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    symbols = tuple(f"C{i:02d}/USDT" for i in range(args.symbols))
    fake = FakeBinance(symbols, bars=LOOKBACK, future=args.candles + 3 * args.disconnects + 10).start().start_stream()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            exchange=ExchangeSettings(base_url=fake.url, ws_url=fake.ws_url, timeframe="1m"),
            runtime=RuntimeSettings(feed="ccxt", symbols=list(symbols)),
            market=MarketSettings(
                prefetch_bars=LOOKBACK - 1,
                poll_interval_s=0.5,
                reconnect_backoff_s=0.05,
                reconnect_backoff_max_s=0.5,
                request_timeout_s=5,
            ),
        )
        collector = Collector(settings, clock=ExchangeTime(fake))

        async def run() -> dict:
            try:
                return await soak(fake, collector, args.candles, args.disconnects, args.seed)
            finally:
                await collector.close()

        try:
            figures = asyncio.run(run())
        finally:
            fake.stop()
    figures.update(
        seed=args.seed, target={"missed": 0, "doubled": 0}, python=platform.python_version(), machine=platform.machine()
    )
    for key in ("candles_per_symbol", "symbols", "disconnects", "missed", "doubled", "out_of_order", "caught_up"):
        print(f"{key:>20}: {figures[key]}")
    for key in ("reconnects", "streamed_candles", "backfilled_candles", "gaps", "seconds"):
        print(f"{key:>20}: {figures[key]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
