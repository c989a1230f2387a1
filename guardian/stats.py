"""Paired statistics for the benchmark gate (numpy only, seeded: the same inputs give the same answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Outcome = Literal["better", "same", "worse", "inconclusive"]


@dataclass(frozen=True)
class PairedTest:
    """Confidence interval of the mean of ``candidate - baseline`` over paired samples."""

    n: int
    mean_diff: float
    low: float
    high: float
    method: str
    identical: bool = False

    def outcome(self, margin: float = 0.0, min_samples: int = 30) -> Outcome:
        """better/worse when the interval excludes zero, same when it lies within ``±margin``."""
        if self.identical:
            return "same"
        if self.n < min_samples:
            return "inconclusive"
        if -margin <= self.low and self.high <= margin:
            return "same"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "inconclusive"


def paired_bootstrap(
    candidate: np.ndarray,
    baseline: np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    block: int = 1,
) -> PairedTest:
    """Percentile bootstrap CI of the mean paired difference.

    ``block`` > 1 resamples contiguous blocks (moving-block bootstrap) to respect the serial
    correlation of per-bar returns. NaNs in either series drop the pair.
    """
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    if n == 0:
        return PairedTest(0, 0.0, float("-inf"), float("inf"), "bootstrap", identical=False)
    if not np.any(d):
        return PairedTest(n, 0.0, 0.0, 0.0, "bootstrap", identical=True)
    rng = np.random.default_rng(seed)
    block = max(1, min(int(block), n))
    n_blocks = -(-n // block)
    means = np.empty(n_boot)
    chunk = max(1, 4_000_000 // max(n, 1))
    offsets = np.arange(block)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        starts = rng.integers(0, n - block + 1, size=(k, n_blocks))
        idx = (starts[:, :, None] + offsets).reshape(k, -1)[:, :n]
        means[start : start + k] = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return PairedTest(
        n, float(d.mean()), float(low), float(high), "bootstrap" if block == 1 else f"block-bootstrap({block})"
    )


def wilcoxon(candidate: np.ndarray, baseline: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value when scipy is installed, else None."""
    try:
        from scipy.stats import wilcoxon as _wilcoxon
    except ImportError:
        return None
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size < 10:
        return None
    return float(_wilcoxon(d).pvalue)
