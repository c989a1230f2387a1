"""The backtest's time axis: the steps (the union of the symbols' timestamps), their
datetime index for the equity curve, and each symbol's ``Bar`` at a step."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from sorte.runtime.values import Bar, Ohlcv


def datetime_index(seconds: np.ndarray) -> pd.DatetimeIndex:
    """``pd.to_datetime(seconds, unit="s", utc=True)``, built directly when every value is a
    whole second (bars always are): the same index, a fraction of the cost."""
    with np.errstate(invalid="ignore"):
        whole = seconds.astype(np.int64)
    if len(seconds) and bool((whole == seconds).all()) and whole.min() > -_MAX_SECONDS and whole.max() < _MAX_SECONDS:
        unit = _whole_seconds_unit()  # the resolution pandas gives whole seconds
        scaled = whole * _PER_SECOND[unit]
        return pd.DatetimeIndex(scaled.view(f"M8[{unit}]"), dtype=pd.DatetimeTZDtype(unit=unit, tz="UTC"))
    return pd.to_datetime(seconds, unit="s", utc=True)


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_MAX_SECONDS = 9_000_000_000  # about 2255: within int64 nanoseconds, so no resolution overflows


@functools.cache
def _whole_seconds_unit() -> str:
    return pd.to_datetime(np.array([0.0]), unit="s", utc=True).unit


def merge_timestamps(ts_all: list[np.ndarray]) -> tuple[np.ndarray, bool]:
    """Sorted union of the symbols' timestamps, and whether it is a single symbol's own
    (strictly increasing) timestamps."""
    if len(ts_all) == 1:
        ts = ts_all[0]
        if len(ts) < 2 or bool((ts[1:] > ts[:-1]).all()):
            return ts.copy(), True
    return np.unique(np.concatenate(ts_all)), False


class BarColumns:
    """Bars of one series as ``Bar`` objects: from Python lists when every bar is visited,
    element by element when only a few are."""

    __slots__ = ("bar", "cols")

    def __init__(self, o: Ohlcv, dense: bool) -> None:
        cols = (o.ts, o.open, o.high, o.low, o.close, o.volume)
        if dense:
            self.cols = tuple(c.tolist() for c in cols)
            self.bar = self._from_lists
        else:
            self.cols = tuple(c.item for c in cols)
            self.bar = self._from_arrays

    def _from_lists(self, sym: str, r: int) -> Bar:
        ts, o, h, lo, c, v = self.cols
        return Bar(sym, r, ts[r], o[r], h[r], lo[r], c[r], v[r])

    def _from_arrays(self, sym: str, r: int) -> Bar:
        ts, o, h, lo, c, v = self.cols
        return Bar(sym, r, ts(r), o(r), h(r), lo(r), c(r), v(r))
