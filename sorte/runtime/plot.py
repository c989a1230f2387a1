"""Equity-curve chart of a backtest, written as PNG."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_equity(equity: pd.Series, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, (ax, dd) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(equity.index, equity.values, color="#1f6feb", linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    drawdown = equity / equity.cummax() - 1
    dd.fill_between(drawdown.index, drawdown.values * 100, 0, color="#d1242f", alpha=0.4)
    dd.set_ylabel("drawdown %")
    dd.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
