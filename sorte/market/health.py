"""What a collector reports about its feed: the models the status page, ``sorte status`` and
Telegram show, and the alerts it raises. Kept current by the collector; ages are computed at
the time of the snapshot, on the exchange's clock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

Mode = Literal["starting", "websocket", "polling", "replay", "stopped"]


class SymbolHealth(BaseModel):
    symbol: str
    last_seq: int | None = Field(None, description="Sequence number of the last emitted bar")
    last_bar_ts: float | None = Field(None, description="Open time (epoch s) of the last emitted bar")
    last_bar_age_s: float | None = Field(None, description="Seconds since the last emitted bar closed")
    lag_s: float | None = Field(None, description="Close of the last emitted bar to its emission, in seconds")
    stale: bool = False


class FeedHealth(BaseModel):
    source: str
    timeframe: str
    mode: Mode
    symbols: list[SymbolHealth]
    lag_s: float | None = Field(None, description="Largest lag of any symbol's last bar")
    clock_offset_s: float = Field(0.0, description="Exchange clock minus local clock, applied to every decision")
    reconnects: int = Field(0, description="WebSocket connections lost or refused")
    poll_failures: int = Field(0, description="REST catch-ups that failed after their retries")
    backfilled_candles: int = Field(0, description="Closed candles emitted from REST (polling and backfill)")
    streamed_candles: int = Field(0, description="Closed candles emitted from the WebSocket")
    gaps: int = Field(0, description="Candles the exchange no longer had when they were backfilled")
    stale_symbols: list[str] = Field(default_factory=list)
    entries_allowed: bool = Field(True, description="False while any symbol is stale: no new entries on old prices")
    market_open: bool = Field(True, description="False outside the venue's sessions (nights, weekends, holidays)")
    opens_at: float | None = Field(None, description="When the next session opens (epoch s), while closed")
    at: float | None = Field(None, description="Local wall time (epoch s) of this snapshot: ages grow from here")


class MarketAlert(BaseModel):
    """Raised once when a symbol goes stale, and once again when it recovers."""

    kind: Literal["stale", "recovered"]
    source: str
    symbol: str
    message: str
    at: float = Field(description="Exchange time (epoch s) of the alert")


def write_health(path: Path, health: FeedHealth) -> None:
    """Replace the health file at once: a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(health.model_dump_json())
    os.replace(tmp, path)


def read_health(path: Path) -> FeedHealth | None:
    """The last health written, or None when there is none (or it cannot be read)."""
    try:
        return FeedHealth.model_validate_json(path.read_text())
    except (OSError, ValueError, ValidationError):
        return None
