"""Loading and validating bar data (CSV or Parquet) into a clean OHLCV frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sorte.errors import DataError
from sorte.runtime.values import Ohlcv

PRICE_COLUMNS = ("open", "high", "low", "close")
TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "ts")
DEFAULT_MAX_GAP: float | None = None  # None: the automatic limit below; a number: that many median spacings
#: The automatic gap limit: 10 median spacings, but never less than a long market closure
#: (a holiday weekend of daily or hourly data) nor more than 100 spacings (intraday data).
AUTO_GAP_SPACINGS, AUTO_GAP_CEILING = 10.0, 100.0
MARKET_CLOSURE_NS = 5 * 86_400 * 1_000_000_000


def load_bars(path: Path, max_gap: float | None = DEFAULT_MAX_GAP) -> pd.DataFrame:
    """Read ``path`` and return a validated frame indexed by UTC time.

    Raises one DataError naming the first problem: missing or unreadable file, missing
    columns, unparseable or unsorted or duplicate timestamps, NaNs, non-positive prices,
    high/low inconsistent with open/close, or a gap longer than ``max_gap`` median spacings
    (by default the automatic limit of ``gap_limit``).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if not path.is_file():
        raise DataError(f"data file {path} is not a regular file")
    raw = _read(path)
    return validate_bars(raw, str(path), max_gap)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as {suffix[1:]}: {exc}".strip()) from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise DataError(f"{path}: cannot read as {suffix[1:]}: {type(exc).__name__}: {exc}") from None
    raise DataError(f"{path}: unsupported data format {suffix or '(none)'}; use .csv or .parquet")


def validate_bars(raw: pd.DataFrame, source: str, max_gap: float | None = DEFAULT_MAX_GAP) -> pd.DataFrame:
    if raw.empty:
        raise DataError(f"{source}: no bars")
    frame = raw.rename(columns={c: str(c).strip().lower() for c in raw.columns})
    index = _time_index(frame, source)
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)} (need open, high, low, close; volume optional)"
        )
    cols = [*PRICE_COLUMNS, "volume"] if "volume" in frame.columns else list(PRICE_COLUMNS)
    try:
        out = frame[cols].apply(pd.to_numeric, errors="raise").astype(float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: non-numeric price or volume value ({exc})") from None
    if "volume" not in out.columns:
        out["volume"] = 0.0
    out.index = pd.DatetimeIndex(index).as_unit("ns")
    out.index.name = "time"
    _check_values(out, source)
    _check_order(out, source, max_gap)
    return out


def _time_index(frame: pd.DataFrame, source: str) -> pd.DatetimeIndex:
    col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if col is None:
        first = frame.columns[0]
        if str(first).startswith("unnamed") or first == "index":
            col = first
        elif isinstance(frame.index, pd.DatetimeIndex):
            return _utc(frame.index)
        else:
            raise DataError(f"{source}: no time column (expected one of {', '.join(TIME_COLUMNS)})")
    values = frame[col]
    try:
        if pd.api.types.is_numeric_dtype(values):
            unit = "ms" if values.abs().max() > 1e11 else "s"
            idx = pd.to_datetime(values, unit=unit, utc=True)
        else:
            idx = pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{source}: cannot parse time column {col!r}: {exc}") from None
    if idx.isna().any():
        row = int(np.flatnonzero(idx.isna().to_numpy())[0])
        raise DataError(f"{source}: empty or invalid time at row {row}")
    return pd.DatetimeIndex(idx)


def _utc(idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _check_values(out: pd.DataFrame, source: str) -> None:
    nan_rows = out.isna().any(axis=1).to_numpy()
    if nan_rows.any():
        row = int(np.flatnonzero(nan_rows)[0])
        raise DataError(
            f"{source}: {int(nan_rows.sum())} bar(s) with NaN values, first at row {row} "
            f"({out.index[row]}); clean or drop them before loading"
        )
    prices = out[list(PRICE_COLUMNS)].to_numpy()
    if (prices <= 0).any() or not np.isfinite(prices).all():
        row = int(np.flatnonzero(((prices <= 0) | ~np.isfinite(prices)).any(axis=1))[0])
        raise DataError(f"{source}: non-positive or infinite price at row {row} ({out.index[row]})")
    o, h, lo, c = prices.T
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: high/low inconsistent with open/close at row {row} ({out.index[row]})")
    if (out["volume"].to_numpy() < 0).any():
        raise DataError(f"{source}: negative volume")


def _check_order(out: pd.DataFrame, source: str, max_gap: float | None) -> None:
    ts = out.index.asi8
    if len(ts) < 2:
        return
    diffs = np.diff(ts)
    if (diffs < 0).any():
        row = int(np.flatnonzero(diffs < 0)[0]) + 1
        raise DataError(
            f"{source}: bars are not in time order: row {row} ({out.index[row]}) comes before "
            f"row {row - 1} ({out.index[row - 1]}); sort the file by time"
        )
    if (diffs == 0).any():
        row = int(np.flatnonzero(diffs == 0)[0]) + 1
        raise DataError(f"{source}: duplicate timestamp {out.index[row]} at rows {row - 1} and {row}")
    median = float(np.median(diffs))
    limit, rule = gap_limit(median, max_gap)
    worst = int(np.argmax(diffs))
    if limit and diffs[worst] > limit:
        raise DataError(
            f"{source}: gap of {_span(diffs[worst])} between rows {worst} ({out.index[worst]}) and "
            f"{worst + 1} ({out.index[worst + 1]}), longer than {rule}; "
            "fill the gap or pass --max-gap N (in median bar spacings; 0: no limit)"
        )


def gap_limit(median_ns: float, max_gap: float | None) -> tuple[float, str]:
    """The largest gap allowed, in ns (0: none), and how it was set, for the error message."""
    if max_gap is not None:
        return max_gap * median_ns, f"{max_gap:g} median bar spacings of {_span(median_ns)}"
    auto = min(AUTO_GAP_CEILING * median_ns, max(AUTO_GAP_SPACINGS * median_ns, MARKET_CLOSURE_NS))
    return auto, (
        f"the default limit of {_span(auto)} ({AUTO_GAP_SPACINGS:g} median bar spacings of {_span(median_ns)}, "
        f"at least 5 days for market closures, at most {AUTO_GAP_CEILING:g} spacings)"
    )


def _span(ns: float) -> str:
    """``88 days`` rather than ``88 days 00:00:00``."""
    text = str(pd.Timedelta(int(ns), unit="ns")).removesuffix(" 00:00:00")
    return "1 day" if text == "1 days" else text


OHLCV_COLUMNS = [*PRICE_COLUMNS, "volume"]


def to_ohlcv(frame: pd.DataFrame) -> Ohlcv:
    ts = frame.index.as_unit("ns").asi8 / 1e9
    # One block copy, then column views: selecting columns one by one costs 10x more.
    block = frame if list(frame.columns) == OHLCV_COLUMNS else frame[OHLCV_COLUMNS]
    cols = np.ascontiguousarray(block.to_numpy(dtype=float).T)
    interval = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
    return Ohlcv(ts, cols[0], cols[1], cols[2], cols[3], cols[4], interval)


def symbol_from_path(path: Path) -> str:
    return Path(path).stem.upper()
