"""The LLM stages' prompts: templates from ``strategies/prompts.py`` (read without importing
it, placeholders checked) filled with a market summary of the bar."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from sorte.errors import CascadeError
from sorte.indicators import rolling_std, rsi, sma
from sorte.literals import read_literals
from sorte.runtime.values import Ohlcv

PLACEHOLDERS = {
    "symbol",
    "side",
    "close",
    "ret_1",
    "ret_10",
    "ret_50",
    "rsi",
    "macd_hist",
    "bb_pct",
    "vol_ratio",
    "volatility",
    "previous",
}
SUMMARY_LOOKBACK = 60


def read_prompts(path: Path) -> tuple[str, dict[str, str]]:
    """SYSTEM and PROMPTS from the prompts file's literals (no import), placeholders checked."""
    if not path.is_file():
        raise CascadeError(f"prompt templates {path} do not exist")
    found = read_literals(path, {"SYSTEM", "PROMPTS"}, CascadeError)
    system, prompts = found.get("SYSTEM", ""), found.get("PROMPTS")
    if not isinstance(system, str) or not isinstance(prompts, dict):
        raise CascadeError(f"{path.name}: needs SYSTEM (a string) and PROMPTS (a dict of strings)")
    for name, template in prompts.items():
        check_template(str(name), template)
    return system, prompts


def check_template(name: str, template: object) -> None:
    if not isinstance(template, str):
        raise CascadeError(f"prompt {name!r} must be a string")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise CascadeError(f"prompt {name!r} is not a valid template: {exc}") from None
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise CascadeError(
            f"prompt {name!r} uses unknown placeholder(s) {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}"
        )


def market_summary(bars: Ohlcv, symbol: str, side: int, previous: str = "") -> dict[str, str]:
    """Numbers a model can read, rounded so the same bar always gives the same prompt."""
    close = bars.close[-SUMMARY_LOOKBACK:]
    volume = bars.volume[-SUMMARY_LOOKBACK:]

    def ret(k: int) -> str:
        return f"{100 * (close[-1] / close[-1 - k] - 1):.2f}" if len(close) > k else "n/a"

    def last(x: np.ndarray, fmt: str) -> str:
        return "n/a" if len(x) == 0 or not np.isfinite(x[-1]) else format(float(x[-1]), fmt)

    macd = sma(close, 12) - sma(close, 26)
    mid, sd = sma(close, 20), rolling_std(close, 20)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_b = (close - (mid - 2 * sd)) / (4 * sd)
        vol_ratio = volume / sma(volume, 20)
        returns = np.diff(close) / close[:-1]
    return {
        "symbol": symbol,
        "side": {1: "BUY", -1: "SELL"}.get(side, "HOLD"),
        "close": f"{close[-1]:.6g}",
        "ret_1": ret(1),
        "ret_10": ret(10),
        "ret_50": ret(50),
        "rsi": last(rsi(close, 14), ".1f"),
        "macd_hist": last(macd - sma(macd, 9), ".4g"),
        "bb_pct": last(pct_b, ".2f"),
        "vol_ratio": last(vol_ratio, ".2f"),
        "volatility": f"{100 * float(np.std(returns[-20:])):.3f}" if len(returns) >= 2 else "n/a",
        "previous": previous or "none",
    }


def render(system: str, template: str, summary: dict[str, str]) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": template.format(**summary)}]
