from __future__ import annotations

import numpy as np
import pytest

from sorte.runtime import risk


def test_max_drawdown():
    assert risk.max_drawdown(np.array([100, 120, 90, 130, 65])) == pytest.approx(0.5)
    assert risk.max_drawdown(np.array([1, 2, 3])) == 0


def test_sharpe_and_sortino_against_hand_computation():
    r = np.array([0.01, -0.02, 0.015, 0.005, -0.01, 0.02])
    assert risk.sharpe(r, 252) == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert risk.sortino(r, 252) == pytest.approx(r.mean() / downside * np.sqrt(252))
    assert risk.sharpe(np.zeros(10), 252) == 0


def test_historical_var_is_the_loss_quantile():
    r = np.linspace(-0.1, 0.1, 201)
    assert risk.historical_var(r, 0.95) == pytest.approx(0.09)
    assert risk.historical_var(np.full(10, 0.01)) == 0


def test_correlation_matrix():
    rng = np.random.default_rng(0)
    a = np.cumprod(1 + rng.normal(0, 0.01, 200)) * 100
    b = np.cumprod(1 + rng.normal(0, 0.01, 200)) * 100
    names, corr = risk.correlation_matrix({"A": a, "B": a * 2, "C": b})
    assert names == ["A", "B", "C"]
    assert corr[0, 1] == pytest.approx(1.0)
    assert abs(corr[0, 2]) < 0.3


def test_periods_per_year():
    assert risk.periods_per_year(86_400) == pytest.approx(365.25)


def test_var_quantile_equals_numpys():
    """``historical_var`` takes its quantile from one partition; it must be numpy's value."""
    rng = np.random.default_rng(11)
    for _ in range(2000):
        r = rng.normal(0, 0.01, int(rng.integers(1, 400)))
        if rng.random() < 0.3:
            r = np.round(r, 3)  # ties
        q = float(rng.choice([0.01, 0.05, 0.5, rng.random()]))
        assert risk._quantile(r, q) == float(np.quantile(r, q))
    assert np.isnan(risk._quantile(np.array([0.1, np.nan, 0.2]), 0.05))
