"""A collector as the runtime's ``Feed``: its bars grouped into one batch per candle time.

The commander reads its steps from here. A batch holds the bars of one open time, one per
symbol that has it: after the first bar of a time arrives, the others are waited for at most
``batch_settle_s``; a symbol later than that goes into a later batch of its own, still in
order, so no bar is lost or doubled and each symbol's sequence stays contiguous.
``next_batch`` returns an empty batch when nothing came within ``wait_s``: the caller gets to
do its work between steps (requests, hand-overs) while the market is quiet.

A bar whose candle closed more than ``stale_intervals`` intervals ago (a catch-up after a
restart, a backfill after an outage) is still processed, so indicators stay right, but is not
``fresh``: whoever owns the feed takes no new entries on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from sorte.market.collector import Collector
from sorte.market.health import FeedHealth
from sorte.runtime.values import Bar, Ohlcv


class MarketFeed:
    live = True

    def __init__(self, collector: Collector, wait_s: float = 1.0, settle_s: float | None = None) -> None:
        self.collector = collector
        self.symbols = list(collector.symbols)
        self.wait_s = wait_s
        self.settle_s = collector.market.batch_settle_s if settle_s is None else settle_s
        self.queue = collector.subscribe()
        self.cursor: dict[str, int] = {}
        self.pending: list[Bar] = []
        self.sent_ts: dict[str, float] = {}  # each symbol's last candle time handed out
        self.task: asyncio.Task[None] | None = None

    # -- Feed ------------------------------------------------------------------------------
    def seek(self, cursor: dict[str, int]) -> None:
        """Resume after ``cursor``: the collector emits every candle after it (cache, REST)."""
        if self.task is not None:
            raise RuntimeError("a market feed is positioned before it starts")
        self.cursor = {s: int(v) for s, v in cursor.items() if s in self.symbols}

    async def next_batch(self) -> list[Bar] | None:
        if self.task is None:
            await self.open()
        self._check_collector()
        self._drain()
        if not self.pending:
            with contextlib.suppress(TimeoutError):
                self._keep(await asyncio.wait_for(self.queue.get(), self.wait_s))
            self._drain()
            if not self.pending:
                self._check_collector()
                return []
        deadline = time.monotonic() + self.settle_s
        while True:  # the oldest time pending: a symbol's older bar may arrive while waiting
            ts = min(b.ts for b in self.pending)
            if self._complete(ts) or (left := deadline - time.monotonic()) <= 0:
                break
            with contextlib.suppress(TimeoutError):
                self._keep(await asyncio.wait_for(self.queue.get(), left))
            self._drain()
        batch = sorted((b for b in self.pending if b.ts == ts), key=lambda b: b.symbol)
        self.pending = [b for b in self.pending if b.ts != ts]
        for b in batch:
            self.sent_ts[b.symbol] = ts
        return batch

    def interval_s(self, symbol: str) -> float:
        return self.collector.interval_s

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        return self.collector.history(symbol, n, before_seq)

    # -- the market side -------------------------------------------------------------------
    async def open(self) -> None:
        """Load the markets, prefetch the lookback, then collect in the background."""
        if self.task is not None:
            return
        await self.collector.start(self.cursor or None)
        self.task = asyncio.create_task(self.collector.run(), name=f"collector-{self.collector.source}")

    async def set_symbols(self, symbols: list[str]) -> list[str]:
        """Collect ``symbols`` from the next candle on; returns the added ones. Bars of a
        dropped symbol still waiting here are discarded with it."""
        added = await self.collector.set_symbols(symbols)
        self.symbols = list(self.collector.symbols)
        self.pending = [b for b in self.pending if b.symbol in self.symbols]
        return added

    def fresh(self, bars: list[Bar]) -> bool:
        """Whether new entries may be taken on ``bars``: recent, and no symbol stale."""
        return all(self.collector.recent(b) and self.collector.entries_allowed(b.symbol) for b in bars)

    def health(self) -> FeedHealth:
        return self.collector.health()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.collector.close()

    def _drain(self) -> None:
        while not self.queue.empty():
            self._keep(self.queue.get_nowait())

    def _keep(self, bar: Bar) -> None:
        if bar.symbol in self.collector.states:  # not a symbol dropped since it was emitted
            self.pending.append(bar)

    def _complete(self, ts: float) -> bool:
        """Every symbol has its bar of ``ts`` here, or went past it already (the rest of a
        candle whose first bars left in an earlier batch waits for nobody)."""
        here = {b.symbol for b in self.pending if b.ts == ts}
        return all(s in here or self.sent_ts.get(s, -1.0) >= ts for s in self.symbols)

    def _check_collector(self) -> None:
        """A collector that stopped (a bad symbol, an error it cannot recover) ends the feed."""
        if self.task is not None and self.task.done() and not self.task.cancelled():
            self.task.result()
