"""The collector as the commander's feed: bars grouped into one batch per candle time, each
symbol's bars in order, a late symbol in a later batch, an empty batch while the market is
quiet, and freshness (no entries on candles that closed long ago)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from sorte.market.feed import MarketFeed
from sorte.runtime.values import Bar


class Stub:
    """What ``MarketFeed`` uses of a collector: its symbols, settings, queue and clock."""

    def __init__(self, symbols: list[str], now: float = 10_000.0) -> None:
        self.symbols, self.interval_s = symbols, 60.0
        self.market = SimpleNamespace(batch_settle_s=0.05, stale_intervals=3)
        self.clock = SimpleNamespace(now=lambda: self.now)
        self.now = now
        self.stale: set[str] = set()
        self.queue: asyncio.Queue[Bar] = asyncio.Queue()

    @property
    def states(self) -> dict[str, object]:
        return dict.fromkeys(self.symbols)

    def subscribe(self) -> asyncio.Queue[Bar]:
        return self.queue

    def entries_allowed(self, symbol: str | None = None) -> bool:
        return symbol not in self.stale

    def recent(self, bar: Bar) -> bool:  # the crypto calendar: market time is wall time
        return self.now - (bar.ts + self.interval_s) <= self.market.stale_intervals * self.interval_s


def bar(symbol: str, seq: int) -> Bar:
    return Bar(symbol, seq, seq * 60.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def feed_of(stub: Stub) -> MarketFeed:
    feed = MarketFeed(stub, wait_s=0.05)  # type: ignore[arg-type]  # the stub has what the feed uses
    feed.task = asyncio.get_running_loop().create_future()  # "started": no exchange to open
    return feed


def seqs(batch: list[Bar] | None) -> list[tuple[str, int]]:
    return [(b.symbol, b.seq) for b in batch or []]


def test_one_batch_per_candle_time_with_each_symbols_bars_in_order() -> None:
    async def body() -> list[list[tuple[str, int]]]:
        stub = Stub(["A", "B"])
        feed = feed_of(stub)
        for b in (bar("A", 2), bar("B", 1), bar("B", 2), bar("A", 3)):  # B was late with 1
            stub.queue.put_nowait(b)
        return [seqs(await feed.next_batch()) for _ in range(3)]

    assert asyncio.run(body()) == [[("B", 1)], [("A", 2), ("B", 2)], [("A", 3)]]


def test_an_older_bar_arriving_while_waiting_goes_first() -> None:
    async def body() -> list[list[tuple[str, int]]]:
        stub = Stub(["A", "B"])
        feed = feed_of(stub)
        stub.queue.put_nowait(bar("A", 5))

        async def late() -> None:
            await asyncio.sleep(0.01)
            stub.queue.put_nowait(bar("B", 4))
            stub.queue.put_nowait(bar("B", 5))

        task = asyncio.create_task(late())
        batches = [seqs(await feed.next_batch()) for _ in range(2)]
        await task
        return batches

    assert asyncio.run(body()) == [[("B", 4)], [("A", 5), ("B", 5)]]


def test_a_quiet_market_gives_an_empty_batch_and_a_missing_symbol_does_not_block() -> None:
    async def body() -> tuple[list, list]:
        stub = Stub(["A", "B"])
        feed = feed_of(stub)
        quiet = await feed.next_batch()
        stub.queue.put_nowait(bar("A", 7))  # B has no candle at this time (no trades)
        return seqs(quiet), seqs(await feed.next_batch())

    assert asyncio.run(body()) == ([], [("A", 7)])


def test_old_or_stale_candles_are_not_fresh() -> None:
    stub = Stub(["A", "B"], now=100 * 60.0)

    async def body() -> tuple[bool, bool, bool]:
        feed = feed_of(stub)
        recent = feed.fresh([bar("A", 98), bar("B", 98)])  # closed at minute 99, a minute ago
        old = feed.fresh([bar("A", 90)])  # closed 9 intervals ago: a catch-up
        stub.stale.add("B")
        stale = feed.fresh([bar("B", 99)])
        return recent, old, stale

    assert asyncio.run(body()) == (True, False, False)


def test_a_collector_that_failed_ends_the_feed_with_its_error() -> None:
    async def body() -> None:
        stub = Stub(["A"])
        feed = feed_of(stub)
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("unknown symbol 'A' on binance"))
        feed.task = failed  # type: ignore[assignment]
        await feed.next_batch()

    try:
        asyncio.run(body())
    except RuntimeError as exc:
        assert "unknown symbol" in str(exc)
    else:
        raise AssertionError("the collector's failure was swallowed")


def test_the_rest_of_a_split_candle_waits_for_nobody() -> None:
    async def body() -> tuple[list, list]:
        stub = Stub(["A", "B"])
        feed = feed_of(stub)
        stub.queue.put_nowait(bar("A", 3))  # B's bar of this time comes after the settle wait
        first = seqs(await feed.next_batch())
        feed.settle_s = 600  # a wait for A's bar of time 3, which already left, would hang here
        stub.queue.put_nowait(bar("B", 3))
        return first, seqs(await asyncio.wait_for(feed.next_batch(), 10))

    assert asyncio.run(body()) == ([("A", 3)], [("B", 3)])
