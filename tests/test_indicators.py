from __future__ import annotations

import numpy as np
import pytest

from sorte import indicators


def test_label_matches_nested_where_and_the_first_pair_wins():
    rng = np.random.default_rng(3)
    a, b = rng.random(500) < 0.1, rng.random(500) < 0.1
    got = indicators.label(a, "first", b, "second")
    want = np.where(a, "first", np.where(b, "second", ""))
    assert got.shape == (500,) and (got == want).all()
    assert got[a & b].tolist() == ["first"] * int((a & b).sum())


def test_label_needs_pairs():
    with pytest.raises(ValueError, match="pairs"):
        indicators.label(np.ones(3, bool), "x", np.ones(3, bool))


def test_rolling_std_is_window_exact():
    """The value at bar i depends only on its window: a cut series gives the same bits."""
    x = np.cumsum(np.random.default_rng(5).normal(size=300)) + 100
    full = indicators.rolling_std(x, 20)
    for end in (20, 57, 300):
        np.testing.assert_array_equal(indicators.rolling_std(x[end - 20 : end], 20)[-1], full[end - 1])
    np.testing.assert_allclose(full[19:], [x[i - 19 : i + 1].std() for i in range(19, 300)], rtol=1e-12)
