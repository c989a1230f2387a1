"""Causal, window-exact indicator helpers used by strategies.

Every value at bar ``i`` depends only on bars ``i - n + 1 .. i`` (a fixed window), computed
independently per window. So a batch computation over a whole history and a streaming
computation over a trailing window give bit-identical values: the backtester and the
live runtime share one code path for decisions. Bars before a window is full are NaN.
"""

from __future__ import annotations

import numpy as np


def _window_fold(x: np.ndarray, n: int, op) -> np.ndarray:
    """``op``-fold of every length-``n`` window, padded with NaN in front.

    Each window is folded in the same fixed order (oldest bar first) wherever the series
    starts, which keeps batch and streaming results bit-identical, and it runs as ``n``
    whole-array operations instead of one Python step per bar.
    """
    if n < 1:
        raise ValueError(f"window must be >= 1, got {n}")
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    m = len(x) - n + 1
    if m <= 0:
        return out
    acc = out[n - 1 :]  # accumulate in place in the output
    acc[:] = x[:m]
    for j in range(1, n):
        op(acc, x[j : j + m], out=acc)
    return out


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over ``n`` bars."""
    return _window_fold(x, n, np.add) / n


def rolling_std(x: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation over ``n`` bars (two-pass, so no cancellation)."""
    x = np.asarray(x, dtype=float)
    mean = sma(x, n)
    out = np.full(len(x), np.nan)
    m = len(x) - n + 1
    if m <= 0:
        return out
    mu = mean[n - 1 :]
    acc = out[n - 1 :]  # accumulate in place in the output
    acc[:] = 0.0
    d = np.empty(m)  # one scratch buffer: the same operations, without an allocation per step
    for j in range(n):
        np.subtract(x[j : j + m], mu, out=d)
        np.multiply(d, d, out=d)
        acc += d
    np.divide(acc, n, out=acc)
    np.sqrt(acc, out=acc)
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    return _window_fold(x, n, np.maximum)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return _window_fold(x, n, np.minimum)


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    """Value ``k`` bars ago (NaN where there is none)."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    """RSI with simple averages of gains and losses over ``n`` changes (Cutler's RSI).

    Cutler's variant keeps the window finite; Wilder's smoothing would make every value
    depend on the whole history and break batch/stream equality.
    """
    close = np.asarray(close, dtype=float)
    delta = np.diff(close, prepend=np.nan)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    gain[0] = loss[0] = np.nan
    avg_gain = sma(gain, n)
    avg_loss = sma(loss, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = avg_gain / avg_loss
        out = 100.0 - 100.0 / (1.0 + rs)
    out = np.where((avg_loss == 0) & (avg_gain > 0), 100.0, out)
    return np.where((avg_loss == 0) & (avg_gain == 0), 50.0, out)


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` was below ``b`` one bar ago and is above it now (strict)."""
    with np.errstate(invalid="ignore"):
        return (shift(a) < shift(b)) & (a > b)


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return crossed_above(b, a)


def label(*pairs) -> np.ndarray:
    """Per-bar text from ``(mask, text)`` pairs: the text of the first mask true at the bar,
    "" where none is. Like nested ``np.where`` on strings, but an object array holding the
    same few str objects, so its cost does not grow with the length of the texts."""
    if not pairs or len(pairs) % 2:
        raise ValueError("label() takes (mask, text) pairs")
    masks, texts = pairs[0::2], pairs[1::2]
    out = np.full(len(masks[0]), "", dtype=object)
    for mask, text in zip(masks[::-1], texts[::-1], strict=True):  # the first pair wins: written last
        out[np.asarray(mask, bool)] = text
    return out


def clip01(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)
