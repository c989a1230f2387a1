"""Bundled demo market: a seeded generator with trending and ranging regimes.

Each symbol follows a Markov chain over three regimes: up-trend, down-trend and range
(mean reversion towards a drifting anchor). Returns within a regime are Gaussian with a
regime-specific drift and volatility; each bar's open/high/low/close come from four
sub-steps of the same process, so highs and lows are consistent with the path. The same
seed always gives the same bars, on every machine (numpy's PCG64).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SYMBOLS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL")
# regime: (drift per bar, volatility per bar, mean-reversion pull)
REGIMES = ((0.0009, 0.006, 0.0), (-0.0009, 0.007, 0.0), (0.0, 0.004, 0.08))
STAY = 0.985  # probability of keeping the regime on the next bar
SUBSTEPS = 4


def demo_symbols(n: int) -> list[str]:
    names = list(SYMBOLS)
    while len(names) < n:
        names.append(f"SYM{len(names):03d}")
    return names[:n]


def generate(
    n_symbols: int = 4,
    n_bars: int = 600,
    seed: int = 7,
    interval_s: int = 60,
    start: str = "2024-01-01",
) -> dict[str, pd.DataFrame]:
    """Bars for ``n_symbols`` symbols, ``interval_s`` apart, as validated-shape frames."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n_bars, freq=f"{interval_s}s", tz="UTC", name="time")
    market = rng.normal(0, 0.002, n_bars * SUBSTEPS)  # shared factor: symbols correlate
    return {
        sym: _one_symbol(rng, market, n_bars, 50.0 + 50.0 * k, index) for k, sym in enumerate(demo_symbols(n_symbols))
    }


def _one_symbol(rng, market, n_bars, start_price, index) -> pd.DataFrame:
    steps = n_bars * SUBSTEPS
    regime = np.empty(steps, np.int8)
    regime[0] = rng.integers(0, 3)
    switches = rng.random(steps) > STAY ** (1 / SUBSTEPS)
    choices = rng.integers(0, 3, steps)
    for i in range(1, steps):
        regime[i] = choices[i] if switches[i] else regime[i - 1]
    drift = np.array([r[0] for r in REGIMES])[regime] / SUBSTEPS
    vol = np.array([r[1] for r in REGIMES])[regime] / np.sqrt(SUBSTEPS)
    pull = np.array([r[2] for r in REGIMES])[regime] / SUBSTEPS
    noise = rng.normal(0, 1, steps)
    log_p = np.empty(steps)
    anchor = level = np.log(start_price)
    for i in range(steps):
        level += drift[i] + vol[i] * noise[i] + 0.5 * market[i] - pull[i] * (level - anchor)
        anchor += 0.02 * (level - anchor)
        log_p[i] = level
    path = np.exp(log_p).reshape(n_bars, SUBSTEPS)
    prev_close = np.concatenate([[start_price], path[:-1, -1]])
    frame = pd.DataFrame(
        {
            "open": prev_close,
            "high": np.maximum(path.max(axis=1), prev_close),
            "low": np.minimum(path.min(axis=1), prev_close),
            "close": path[:, -1],
            "volume": np.round(rng.lognormal(8, 0.5, n_bars)),
        },
        index=index,
    )
    return frame.round(6).assign(
        high=lambda f: f[["open", "high", "close"]].max(axis=1),
        low=lambda f: f[["open", "low", "close"]].min(axis=1),
    )
