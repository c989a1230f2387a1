"""Pair selection on a live feed: between steps the commander refreshes the selection when it
is due (in the background: the tickers of a whole exchange take a while) and trades the
selected symbols plus every symbol the book still holds a position or an open order in, so a
dropped symbol's position is managed until it closes (and an order resting at the exchange,
which may still fill, until it is filled or cancelled) and the symbol goes only then.

A symbol added joins the collector at once (market checked, lookback prefetched); its first
bar reaches the slots with its history (``StepOp.warmup``), so it starts with warm indicators."""

from __future__ import annotations

import asyncio
import time

import structlog

from commander.source import Source
from commander.state import CommanderState
from sorte.config import Settings
from sorte.errors import ConfigError, SorteError
from sorte.market.pairs import PairSelection, PairSelector, saved_selection
from sorte.paths import pairs_file

log = structlog.get_logger("sorte.commander")

RETRY_S = 60.0  # after a failed refresh (the exchange down), the current symbols stay this long


def pair_selector(settings: Settings, feed: Source) -> PairSelector:
    """The selector of the commander's exchange; volatility from the feed's candle cache."""
    pairs = settings.market.pairs
    collector = getattr(feed, "collector", None)
    candles = None
    if pairs.volatility_lookback_bars and collector is not None:
        cache, timeframe = collector.cache, collector.timeframe

        def candles(symbol: str, n: int) -> list[list[float]]:
            return cache.last(symbol, timeframe, n)

    return PairSelector(settings, history="rest" if pairs.min_history_bars else None, candles=candles)


def first_symbols(settings: Settings) -> list[str]:
    """What a live feed starts with: the saved selection when pair selection is on (so a restart
    trades what it traded), else ``runtime.symbols``."""
    if not settings.market.pairs.enabled:
        return list(settings.runtime.symbols)
    if settings.runtime.feed != "ccxt":
        raise ConfigError("market.pairs selects among a crypto exchange's tickers: it needs runtime.feed=ccxt")
    saved = saved_selection(pairs_file(settings.data_dir), settings.exchange.name)
    if saved is not None and saved.symbols:
        return list(saved.symbols)
    if settings.runtime.symbols:
        return list(settings.runtime.symbols)
    raise ConfigError(
        "market.pairs is on but nothing is selected yet: run `sorte pairs --refresh` once "
        "(or set runtime.symbols as the first list)"
    )


class PairRotation:
    def __init__(self, state: CommanderState, selector: PairSelector) -> None:
        self.s, self.selector = state, selector
        self.chosen = list(selector.last.symbols) if selector.last else list(state.feed.symbols)
        self.refreshing: asyncio.Task[PairSelection] | None = None
        self.retry_at = 0.0
        self.asked = False

    def refresh_soon(self) -> None:
        """Refresh at the next chance instead of ``refresh_s`` after the last selection."""
        self.asked = True

    async def between_steps(self) -> None:
        due = self.asked or (self.selector.due() and time.monotonic() >= self.retry_at)
        if self.refreshing is None and due:
            self.asked = False
            self.refreshing = asyncio.create_task(self.selector.refresh(), name="pairs-refresh")
        if self.refreshing is not None and self.refreshing.done():
            self._take(self.refreshing)
            self.refreshing = None
        await self.apply()

    def held(self) -> set[str]:
        """Symbols the book holds a position or an open order in, as the active slot last
        reported it."""
        run = self.s.active_run()
        book = run.last_done.book if run is not None and run.last_done is not None else {}
        return set(book.get("positions", {})) | set(book.get("order_symbols", []))

    async def apply(self) -> None:
        s = self.s
        held = self.held()
        target = sorted(set(self.chosen) | held)
        if not target or target == sorted(s.feed.symbols):
            return
        before = set(s.feed.symbols)
        try:
            added = await s.feed.set_symbols(target)
        except SorteError as exc:  # a symbol the exchange no longer lists: keep trading what runs
            s.alerts.emit("pairs_failed", f"the pair list could not change: {exc}", tick=s.tick)
            self.chosen = sorted(before - held) or self.chosen
            return
        s.joining.update(added)
        dropped = sorted(before - set(target))
        kept = sorted(held - set(self.chosen))
        message = f"trading {', '.join(target)}"
        message += f"; added {', '.join(added)}" if added else ""
        message += f"; dropped {', '.join(dropped)}" if dropped else ""
        message += f"; kept until their positions and orders close: {', '.join(kept)}" if kept else ""
        s.alerts.emit("pairs_changed", message, tick=s.tick, added=added, dropped=dropped, kept=kept)

    def _take(self, task: asyncio.Task[PairSelection]) -> None:
        try:
            selection = task.result()
        except (SorteError, OSError) as exc:
            self.retry_at = time.monotonic() + RETRY_S
            self.s.alerts.emit("pairs_failed", f"pair selection failed; the symbols stay: {exc}", tick=self.s.tick)
            return
        if not selection.symbols:
            self.s.alerts.emit("pairs_empty", "no pair passed the filters; the symbols stay", tick=self.s.tick)
            return
        self.chosen = list(selection.symbols)

    async def close(self) -> None:
        if self.refreshing is not None:
            self.refreshing.cancel()
        await self.selector.close()
