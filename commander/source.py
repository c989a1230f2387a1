"""Where the commander's bars come from: the replay of files (or the bundled demo market), or
the live market through one ``sorte.market`` collector the commander owns.

Every slot receives the same sequence-numbered bars: the commander reads the next batch and
sends it to all of them, so shadow analysis compares like with like on live data too. A slot
never reaches the exchange: on a replay it rebuilds the same replay from the same files for
the history its cascade window needs; on a live feed the commander sends that history (the
``Warmup``) with the slot's role.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from commander.protocol import Warmup
from sorte import paths
from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.market import Collector, FeedHealth, MarketAlert, SymbolHealth
from sorte.market.feed import MarketFeed
from sorte.runtime.assembly import demo_frames, feed_fingerprint, load_frames
from sorte.runtime.clock import Clock, SimClock
from sorte.runtime.feed import ReplayFeed
from sorte.runtime.values import Bar, Ohlcv

WARMUP_EXTRA = 64  # bars beyond the prefetch sent to a slot: a restarted slot may lag a few steps


def _utc(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch_s))


class Source(Protocol):
    """The runtime's ``Feed`` plus what the commander asks of its source."""

    symbols: list[str]
    live: bool
    fingerprint: str  # the ledger belongs to one source: another one is refused

    async def next_batch(self) -> list[Bar] | None: ...
    def seek(self, cursor: dict[str, int]) -> None: ...
    def check_resume(self, cursor: dict[str, int], last_ts: float | None) -> None: ...
    async def open(self) -> None: ...
    def interval_s(self, symbol: str) -> float: ...
    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv: ...
    def finished(self, cursor: dict[str, int]) -> bool: ...
    def fresh(self, bars: list[Bar]) -> bool: ...
    def health(self) -> FeedHealth: ...
    def warmup(self, last: dict[str, int], symbols: list[str] | None = None) -> Warmup | None: ...
    async def set_symbols(self, symbols: list[str]) -> list[str]: ...
    def route_alerts(self, handler: Callable[[MarketAlert], None]) -> None: ...
    async def close(self) -> None: ...


class ReplaySource(ReplayFeed):
    """A replay: finished when every symbol's last bar was processed (it then starts over)."""

    def __init__(self, frames: dict, fingerprint: str) -> None:
        super().__init__(frames, SimClock())
        self.fingerprint = fingerprint

    def finished(self, cursor: dict[str, int]) -> bool:
        return bool(cursor) and all(cursor.get(s, -1) >= len(self.series[s]) - 1 for s in self.symbols)

    async def open(self) -> None:
        """The frames are loaded already."""

    def check_resume(self, cursor: dict[str, int], last_ts: float | None) -> None:
        """A replay's bar numbers are its rows: the fingerprint of its files guards them."""

    def fresh(self, bars: list[Bar]) -> bool:
        return True

    def health(self) -> FeedHealth:
        symbols = [SymbolHealth(symbol=s, last_seq=self.pos[s] - 1 if self.pos[s] else None) for s in self.symbols]
        interval = self.interval_s(self.symbols[0]) if self.symbols else 0.0
        return FeedHealth(
            source="replay", timeframe=timeframe_name(interval), mode="replay", symbols=symbols, at=time.time()
        )

    def warmup(self, last: dict[str, int], symbols: list[str] | None = None) -> Warmup | None:
        return None  # a slot replays the same files itself

    async def set_symbols(self, symbols: list[str]) -> list[str]:
        raise ConfigError("a replay trades the symbols of its files: pair selection needs a live feed")

    def route_alerts(self, handler: Callable[[MarketAlert], None]) -> None:
        """A replay raises no market alerts."""

    async def close(self) -> None:
        """Nothing to release."""


class LiveSource(MarketFeed):
    """The live market: one collector for every slot; the ledger belongs to the source and
    timeframe (symbols may change between runs)."""

    def __init__(self, collector: Collector) -> None:
        super().__init__(collector)
        self.fingerprint = f"market:{collector.source}:{collector.timeframe}"
        self.warmup_bars = collector.market.prefetch_bars + WARMUP_EXTRA

    def finished(self, cursor: dict[str, int]) -> bool:
        return False

    def check_resume(self, cursor: dict[str, int], last_ts: float | None) -> None:
        """The ledger's bar numbers must still name the candles it traded. A session calendar
        changed for days already traded (a closure added or removed in the past) renumbers
        them: resuming would skip or repeat bars and reuse order ids, so it is refused."""
        if not cursor or last_ts is None:
            return
        seq = max(cursor.values())  # the last step's bars: numbers grow with time on every symbol
        now_at = self.collector.calendar.open_ms(seq) / 1000
        if abs(now_at - last_ts) > 0.001:
            raise ConfigError(
                f"the ledger's last bar (seq {seq}) opened at {_utc(last_ts)}, but the "
                f"{self.collector.source} calendar now gives that number to the candle of {_utc(now_at)}: "
                "a closure or an open day was added or removed for a day already traded "
                "(market.b3.holidays, open_days or special hours). Put it back as it was, or trade "
                "from another data_dir"
            )

    def warmup(self, last: dict[str, int], symbols: list[str] | None = None) -> Warmup | None:
        """Each symbol's cached bars before the first one not sent yet: a slot's warm-up (a bar
        already emitted but still waiting here is not in it, or the slot would see it twice)."""
        seq = self.collector.emitter.seq
        self._drain()
        bars = {}
        for symbol in self.symbols if symbols is None else symbols:
            w = self.collector.history(symbol, self.warmup_bars, self.unsent(symbol, last))
            bars[symbol] = [
                [seq([w.ts[i] * 1000]), *(float(col[i]) for col in (w.ts, w.open, w.high, w.low, w.close, w.volume))]
                for i in range(len(w))
            ]
        return Warmup(interval_s=self.collector.interval_s, bars=bars)

    def unsent(self, symbol: str, last: dict[str, int]) -> int | None:
        """The sequence number of the symbol's first bar not sent to the slots yet."""
        if symbol in last:
            return last[symbol] + 1
        waiting = [b.seq for b in self.pending if b.symbol == symbol]
        if waiting:
            return min(waiting)
        state = self.collector.states.get(symbol)
        return None if state is None or state.last_seq is None else state.last_seq + 1

    def route_alerts(self, handler: Callable[[MarketAlert], None]) -> None:
        self.collector.on_alert = handler


def timeframe_name(seconds: float) -> str:
    """'1m', '4h', '1d' for a bar of ``seconds`` (what a replay's files are spaced by)."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def open_source(settings: Settings, clock: Clock | None = None) -> Source:
    """The configured feed: ``replay`` (the files, or the demo market) or a live market
    (``ccxt``, ``b3``) through a collector. Fails here on a bad configuration."""
    feed = settings.runtime.feed
    if settings.runtime.mode == "live" and feed != "ccxt":
        raise ConfigError(
            f"real orders go to a ccxt exchange: runtime.mode=live needs runtime.feed=ccxt, not {feed} "
            "(brapi serves B3 data only)"
        )
    if feed == "replay":
        return replay_source(settings)
    from commander.pairs import first_symbols  # the pair selection is the commander's, not the feed's

    symbols = first_symbols(settings)
    if not symbols:
        raise ConfigError(
            f"the {feed} feed needs symbols: pass --symbols BTC/USDT,ETH/USDT or set runtime.symbols in the config"
        )
    if settings.runtime.data:
        raise ConfigError("runtime.data replays files; it does not combine with a live feed (runtime.feed=replay)")
    source = LiveSource(Collector(settings, symbols, clock=clock))
    if settings.runtime.mode == "live":  # a paper book never turns into a real one
        source.fingerprint += ":live"
    return source


def replay_source(settings: Settings) -> ReplaySource:
    files = settings.runtime.data
    frames = load_frames(files) if files else demo_frames(settings)
    return ReplaySource(frames, feed_fingerprint(frames))


def ledger_path(commander_dir: Path) -> Path:
    """The book of the account: written only by the slot that holds the lease."""
    return paths.commander_ledger(commander_dir)


class WarmupHistory:
    """A slot's history on a live feed: the bars the commander sent with the role."""

    def __init__(self, warmup: Warmup) -> None:
        self.symbols = sorted(warmup.bars)
        self._interval_s = warmup.interval_s
        self.rows = {s: sorted(rows, key=lambda r: r[0]) for s, rows in warmup.bars.items()}

    def interval_s(self, symbol: str) -> float:
        return self._interval_s

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        return self._window([r for r in self.rows.get(symbol, []) if r[0] < before_seq], n)

    def last(self, symbol: str, n: int) -> Ohlcv:
        """The ``n`` newest bars sent for ``symbol``: the window it starts warm with."""
        return self._window(self.rows.get(symbol, []), n)

    def _window(self, rows: list[list[float]], n: int) -> Ohlcv:
        taken = rows[-n:] if n > 0 else []
        ts, o, h, lo, c, v = np.array(taken, dtype=float).reshape(-1, 7).T[1:]
        return Ohlcv(ts, o, h, lo, c, v, interval_s=self._interval_s)


class PushedFeed:
    """A slot's feed: bars are pushed by the commander; history comes from the replay or the
    commander's warm-up."""

    live = False

    def __init__(self, source: ReplayFeed | WarmupHistory) -> None:
        self.source = source
        self.symbols = list(source.symbols)

    async def next_batch(self) -> list[Bar] | None:  # the commander drives ``Runtime.process``
        raise RuntimeError("a slot's bars are pushed by the commander")

    def seek(self, cursor: dict[str, int]) -> None:
        """Nothing to move: the commander sends the bars after the cursor."""

    def interval_s(self, symbol: str) -> float:
        return self.source.interval_s(symbol)

    async def history(self, symbol: str, before_seq: int, n: int) -> Ohlcv:
        return await self.source.history(symbol, before_seq, n)
