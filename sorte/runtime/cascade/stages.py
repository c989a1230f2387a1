"""The rule stages of the cascade: a strategy that proposes a side, and the deterministic
technical analysis that confirms it (also the LLM stages' fallback)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sorte.indicators import clip01, label, rolling_std, rsi, sma
from sorte.runtime.cascade.definition import StageDef
from sorte.runtime.strategy import Strategy
from sorte.runtime.values import Ohlcv

if TYPE_CHECKING:
    from sorte.runtime.strategy_host import RemoteStrategy


@dataclass(slots=True)
class StageOutput:
    score: np.ndarray
    side: np.ndarray
    reason: np.ndarray
    hold: np.ndarray | None = None  # seconds, from a final LLM stage (NaN where it gave none)


class Stage(Protocol):
    name: str
    threshold: float
    weight: float

    def lookback(self) -> int: ...

    def evaluate(self, bars: Ohlcv, proposed: np.ndarray) -> StageOutput: ...


class StrategyStage:
    def __init__(self, definition: StageDef, strategy: Strategy | RemoteStrategy) -> None:
        self.name, self.threshold, self.weight = definition.name, definition.threshold, definition.weight
        self.strategy = strategy

    def lookback(self) -> int:
        return self.strategy.lookback()

    def evaluate(self, bars: Ohlcv, proposed: np.ndarray) -> StageOutput:
        score, side, reason = self.strategy.signals(bars)
        return StageOutput(np.asarray(score, float), np.asarray(side, np.int8), np.asarray(reason))


def technical_bullishness(close: np.ndarray) -> np.ndarray:
    """0 (bearish) .. 1 (bullish): mean of RSI, MACD-histogram and Bollinger %b signals.

    MACD here is built from simple averages so that every input stays window-exact.
    """
    r = rsi(close, 14) / 100.0
    macd = sma(close, 12) - sma(close, 26)
    hist = macd - sma(macd, 9)
    scale = rolling_std(close, 26)
    with np.errstate(invalid="ignore", divide="ignore"):
        macd_signal = 0.5 + 0.5 * np.tanh(hist / scale * 4.0)
        mid, sd = sma(close, 20), rolling_std(close, 20)
        pct_b = clip01((close - (mid - 2 * sd)) / (4 * sd))
    return (r + macd_signal + pct_b) / 3.0


TECHNICAL_LOOKBACK = 26 + 9 + 1


class TechnicalStage:
    """Deterministic technical analysis: how much RSI, MACD and %b agree with the side."""

    kind = "technical"

    def __init__(self, definition: StageDef) -> None:
        self.name, self.threshold, self.weight = definition.name, definition.threshold, definition.weight

    def lookback(self) -> int:
        return TECHNICAL_LOOKBACK

    def evaluate(self, bars: Ohlcv, proposed: np.ndarray) -> StageOutput:
        bull = np.nan_to_num(technical_bullishness(bars.close), nan=0.5)
        score = np.where(proposed > 0, bull, np.where(proposed < 0, 1.0 - bull, 0.5))
        reason = label(proposed != 0, "technical agreement", proposed == 0, "no side to confirm")
        return StageOutput(score, np.zeros(len(score), np.int8), reason)
