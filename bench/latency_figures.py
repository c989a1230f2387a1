"""Percentile figures the commander benchmarks report (``bench/commander.py``,
``bench/commander_live.py``): nearest-rank, so a p99 is a sample that was measured."""

from __future__ import annotations

import statistics
from typing import Any


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (p99 of 200 values: the 198th smallest); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))], 2)


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }
