"""Hot-path value types of the trading runtime.

These are slotted dataclasses rather than pydantic models: a backtest creates one per
bar and per order, and validation happens once at the boundaries (data loading,
configuration, cascade and parameter specs) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BUY = 1
SELL = -1
FLAT = 0


def side_name(side: int) -> str:
    return {BUY: "BUY", SELL: "SELL"}.get(side, "FLAT")


@dataclass(slots=True)
class Bar:
    symbol: str
    seq: int  # position of the bar in its symbol's series, 0-based, gapless
    ts: float  # epoch seconds of the bar's open
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(slots=True)
class StageResult:
    stage: str
    score: float
    side: int
    reason: str
    passed: bool
    latency_s: float = 0.0


@dataclass(slots=True)
class Decision:
    symbol: str
    seq: int
    ts: float
    side: int
    confidence: float
    strategy: str
    reason: str
    price: float
    stop_loss: float  # fraction of entry price, 0 = none
    take_profit: float  # fraction of entry price, 0 = none
    hold_s: float  # minimum time the position stays open, already clamped
    stages: list[StageResult] = field(default_factory=list)


@dataclass(slots=True)
class Order:
    client_order_id: str
    symbol: str
    side: int
    qty: float
    kind: str  # "market" | "limit"
    purpose: str  # "open" | "close"
    strategy: str
    created_seq: int
    ts: float
    reason: str = ""
    limit_price: float = 0.0
    stop_loss: float = 0.0
    take_profit: float = 0.0
    hold_s: float = 0.0
    ttl_bars: int = 0  # limit orders expire after this many bars (0 = good till filled)
    status: str = "new"  # new | filled | expired | rejected


@dataclass(slots=True)
class Fill:
    client_order_id: str
    symbol: str
    side: int
    qty: float
    price: float
    fee: float
    seq: int
    ts: float
    purpose: str  # open | close | stop_loss | take_profit
    strategy: str
    realized_pnl: float = 0.0


@dataclass(slots=True)
class Position:
    symbol: str
    qty: float  # signed: > 0 long, < 0 short
    entry_price: float
    entry_seq: int
    entry_ts: float
    strategy: str
    stop_price: float = 0.0  # 0 = none
    take_price: float = 0.0
    hold_until: float = 0.0  # epoch seconds before which a signal may not close it

    @property
    def side(self) -> int:
        return BUY if self.qty > 0 else SELL


@dataclass(slots=True)
class Ohlcv:
    """Columns of a bar series (a whole history or a trailing window), as float arrays."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval_s: float = 0.0  # bar duration: a decision on a bar is made at ts + interval_s

    def __len__(self) -> int:
        return len(self.close)

    def window(self, end: int, size: int) -> Ohlcv:
        """Bars ``end - size + 1 .. end`` inclusive (fewer at the start of the series)."""
        lo = max(0, end - size + 1)
        hi = end + 1
        return Ohlcv(
            self.ts[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
            self.interval_s,
        )


class Params:
    """Validated parameter values, read as attributes (``p.fast``)."""

    def __init__(self, values: dict[str, int | float | bool]) -> None:
        self.__dict__.update(values)

    def as_dict(self) -> dict[str, int | float | bool]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"Params({self.__dict__})"
