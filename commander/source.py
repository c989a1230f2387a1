"""Where the commander's bars come from, built the same way in the commander (which reads
the next batches) and in every slot (which reads the history a cascade window needs).

Both slots therefore see the same sequence-numbered bars: the commander sends them, and a
slot only ever looks up bars before the ones it was sent."""

from __future__ import annotations

from pathlib import Path

from sorte import paths
from sorte.config import Settings
from sorte.errors import ConfigError
from sorte.runtime.assembly import demo_frames, feed_fingerprint, load_frames
from sorte.runtime.clock import SimClock
from sorte.runtime.feed import ReplayFeed
from sorte.runtime.values import Bar, Ohlcv


def open_source(settings: Settings) -> tuple[ReplayFeed, str]:
    """The replay feed of the configured files (or the bundled demo market) and its fingerprint."""
    if settings.runtime.feed != "replay":
        raise ConfigError(
            "the commander runs on the replay feed for now (runtime.feed=replay); "
            "`sorte run --live` runs a single runtime on live exchange data"
        )
    files = settings.runtime.data
    frames = load_frames(files) if files else demo_frames(settings)
    return ReplayFeed(frames, SimClock()), feed_fingerprint(frames)


def ledger_path(commander_dir: Path) -> Path:
    """The book of the account: written only by the slot that holds the lease."""
    return paths.commander_ledger(commander_dir)


class PushedFeed:
    """A slot's feed: bars are pushed by the commander; history comes from the source."""

    live = False

    def __init__(self, source: ReplayFeed) -> None:
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
