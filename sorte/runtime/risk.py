"""Risk: performance statistics and hard limits that veto orders.

The limits are deterministic code; no cascade score can lift them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sorte.config import RiskSettings
from sorte.runtime.values import Position


def returns_from_equity(equity: np.ndarray) -> np.ndarray:
    equity = np.asarray(equity, float)
    if len(equity) < 2:
        return np.zeros(0)
    return np.diff(equity) / equity[:-1]


def sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    r = np.asarray(returns, float)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    if sd == 0:
        return 0.0
    return float(r.mean() / sd * np.sqrt(periods_per_year))


def sortino(returns: np.ndarray, periods_per_year: float) -> float:
    r = np.asarray(returns, float)
    if len(r) < 2:
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    if downside == 0:
        return 0.0
    return float(r.mean() / downside * np.sqrt(periods_per_year))


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough loss as a positive fraction (0.2 = -20%)."""
    e = np.asarray(equity, float)
    if len(e) == 0:
        return 0.0
    peaks = np.maximum.accumulate(e)
    return float(np.max((peaks - e) / peaks))


def historical_var(returns: np.ndarray, level: float = 0.95) -> float:
    """One-period historical Value at Risk as a positive fraction of equity."""
    r = np.asarray(returns, float)
    if len(r) == 0:
        return 0.0
    return float(max(0.0, -_quantile(r, 1.0 - level)))


def _quantile(r: np.ndarray, q: float) -> float:
    """``np.quantile(r, q)`` (linear method) of a 1-D float array from one partition: the
    same value, without the generic machinery that costs more than the sort itself."""
    n = len(r)
    if n < 2 or np.isnan(r).any():
        return float(np.quantile(r, q))
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(r, (lo, hi))
    a, b, t = float(part[lo]), float(part[hi]), pos - lo
    diff = b - a
    # numpy's lerp: from the nearer end, so that t = 1 gives b exactly
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def correlation_matrix(closes: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Correlation of simple returns over the common tail of each symbol's closes."""
    names = sorted(closes)
    n = min((len(closes[s]) for s in names), default=0)
    if len(names) < 2 or n < 3:
        return names, np.eye(len(names))
    rets = np.array([np.diff(closes[s][-n:]) / closes[s][-n:-1] for s in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(rets)
    return names, np.nan_to_num(corr, nan=0.0)


def periods_per_year(spacing_s: float) -> float:
    return 365.25 * 86_400 / spacing_s if spacing_s > 0 else 252.0


@dataclass(slots=True)
class Veto:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


class RiskManager:
    """Checks a proposed entry against the hard limits; returns the first veto or None."""

    def __init__(self, limits: RiskSettings) -> None:
        self.limits = limits
        self.peak_equity = 0.0
        self.vetoes: dict[str, int] = {}

    def observe_equity(self, equity: float) -> None:
        if equity > self.peak_equity:  # not max(): this runs on every step of a backtest
            self.peak_equity = equity

    def check_entry(
        self,
        symbol: str,
        side: int,
        notional: float,
        equity: float,
        positions: dict[str, Position],
        gross_exposure: float,
        recent_closes: dict[str, np.ndarray] | None = None,
    ) -> Veto | None:
        lim = self.limits
        if equity <= 0:
            veto = Veto("equity", "account equity is not positive")
        else:
            if equity > self.peak_equity:  # observe_equity, inlined: this runs per entry
                self.peak_equity = equity
            drawdown = 1 - equity / self.peak_equity
            if drawdown >= lim.max_drawdown:
                veto = Veto("max_drawdown", f"drawdown {drawdown:.1%} >= limit {lim.max_drawdown:.0%}")
            elif symbol not in positions and len(positions) >= lim.max_open_positions:
                veto = Veto("max_open_positions", f"{len(positions)} positions open")
            elif notional > lim.max_position_fraction * equity * (1 + 1e-9):
                veto = Veto("max_position", f"{notional:.2f} > {lim.max_position_fraction:.0%} of equity")
            elif (gross_exposure + notional) > lim.max_gross_exposure * equity * (1 + 1e-9):
                veto = Veto(
                    "max_gross_exposure",
                    f"exposure would be {(gross_exposure + notional) / equity:.0%} of equity",
                )
            elif recent_closes and positions:
                veto = self._check_correlation(symbol, side, positions, recent_closes)
            else:
                return None
        if veto is not None:
            self.vetoes[veto.rule] = self.vetoes.get(veto.rule, 0) + 1
        return veto

    def _check_correlation(self, symbol, side, positions, recent_closes):
        window = self.limits.correlation_window
        held = [s for s, p in positions.items() if s != symbol and p.side == side]
        mine = recent_closes.get(symbol)
        if mine is None or len(mine) < window or not held:
            return None
        for other in held:
            theirs = recent_closes.get(other)
            if theirs is None or len(theirs) < window:
                continue
            _, corr = correlation_matrix({symbol: mine[-window:], other: theirs[-window:]})
            if corr[0, 1] >= self.limits.max_correlation:
                return Veto(
                    "max_correlation",
                    f"{symbol} correlates {corr[0, 1]:.2f} with held {other} (limit {self.limits.max_correlation:.2f})",
                )
        return None
