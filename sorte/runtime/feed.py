"""Feeds: where bars come from. Replay (files or the demo market) is the embedded default;
``sorte.runtime.ccxt_feed`` polls a real exchange behind the same interface."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from sorte.runtime.clock import Clock
from sorte.runtime.data import to_ohlcv
from sorte.runtime.values import Bar, Ohlcv


class Feed(Protocol):
    symbols: list[str]
    live: bool

    async def next_batch(self) -> list[Bar] | None:
        """The bars of the next step (one per symbol that has one), None when exhausted."""
        ...

    def seek(self, cursor: dict[str, int]) -> None:
        """Resume after the given last-processed sequence number of each symbol."""
        ...

    def interval_s(self, symbol: str) -> float:
        """Duration of one bar of ``symbol`` in seconds."""
        ...

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        """Up to ``n`` bars of ``symbol`` ending just before ``before_seq``."""
        ...


class ReplayFeed:
    """Replays bar frames in time order. ``speed`` 0 replays as fast as possible; ``speed``
    k > 0 paces the replay at k times the bars' own time spacing."""

    live = False

    def __init__(self, frames: dict[str, pd.DataFrame], clock: Clock, speed: float = 0.0) -> None:
        self.symbols = sorted(frames)
        self.series = {s: to_ohlcv(frames[s]) for s in self.symbols}
        self.timeline = np.unique(np.concatenate([self.series[s].ts for s in self.symbols]))
        self.pos = {s: 0 for s in self.symbols}
        self.step = 0
        self.clock, self.speed = clock, speed
        self._last_ts: float | None = None

    def __len__(self) -> int:
        return len(self.timeline)

    def seek(self, cursor: dict[str, int]) -> None:
        for sym in self.symbols:
            self.pos[sym] = cursor.get(sym, -1) + 1
        # Skip timeline steps whose bars were all processed already.
        while self.step < len(self.timeline) and all(
            self.pos[s] >= len(self.series[s]) or self.series[s].ts[self.pos[s]] > self.timeline[self.step]
            for s in self.symbols
        ):
            self.step += 1

    async def next_batch(self) -> list[Bar] | None:
        if self.step >= len(self.timeline):
            return None
        ts = float(self.timeline[self.step])
        if self.speed > 0 and self._last_ts is not None:
            await self.clock.sleep((ts - self._last_ts) / self.speed)
        self._last_ts = ts
        self.step += 1
        bars = []
        for sym in self.symbols:
            o, i = self.series[sym], self.pos[sym]
            if i < len(o) and o.ts[i] == ts:
                bars.append(
                    Bar(sym, i, ts, o.open.item(i), o.high.item(i), o.low.item(i), o.close.item(i), o.volume.item(i))
                )
                self.pos[sym] = i + 1
        return bars

    def interval_s(self, symbol: str) -> float:
        return self.series[symbol].interval_s

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        return self.series[symbol].window(before_seq - 1, n)
