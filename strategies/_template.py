"""Strategy template: buy when the close crosses above its SMA, sell when it crosses below."""

import numpy as np

from sorte.indicators import clip01, crossed_above, crossed_below, label, rolling_std, sma

# How traders call this strategy, in Portuguese and English: the request interpreter matches them.
ALIASES = []

PARAMS = {
    "period": {
        "type": "int",
        "default": 20,
        "min": 2,
        "max": 400,
        "doc": "SMA window in bars.",
        "aliases": ["período", "janela", "período da média", "period", "window", "sma period"],
    },
    "strength_scale": {
        "type": "float",
        "default": 1.0,
        "min": 0.1,
        "max": 10.0,
        "doc": "Distance from the SMA, in standard deviations, that maps to a score of about 0.9.",
        "aliases": ["escala de força", "força", "escala", "strength", "strength scale", "scale"],
    },
    "stop_loss": {
        "type": "float",
        "default": 0.02,
        "min": 0.0,
        "max": 0.5,
        "doc": "Stop loss as a fraction of the entry price (0 = none).",
    },
    "take_profit": {
        "type": "float",
        "default": 0.04,
        "min": 0.0,
        "max": 2.0,
        "doc": "Take profit as a fraction of the entry price (0 = none).",
    },
    "min_hold_s": {
        "type": "float",
        "default": 30.0,
        "min": 5.0,
        "max": 90.0,
        "doc": "Minimum seconds a position stays open before a signal may close it.",
    },
}


def lookback(p):
    return p.period + 1


def features(bars, p):
    return {
        "close": bars.close,
        "sma": sma(bars.close, p.period),
        "sd": rolling_std(bars.close, p.period),
    }


def decide(f, p):
    up = crossed_above(f["close"], f["sma"])
    down = crossed_below(f["close"], f["sma"])
    side = np.where(up, 1, np.where(down, -1, 0))
    # Conviction grows with the distance of the close from its average, in standard deviations.
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = side * (f["close"] - f["sma"]) / f["sd"]
    score = np.where(side != 0, clip01(0.5 + 0.4 * np.tanh(distance / p.strength_scale)), 0.0)
    reason = label(
        up,
        f"close crossed above SMA{p.period}",
        down,
        f"close crossed below SMA{p.period}",
    )
    return score, side, reason
