"""Moving-average momentum crossover: buy when the fast SMA crosses above the slow one."""

import numpy as np

from sorte.indicators import clip01, crossed_above, crossed_below, label, rolling_std, shift, sma

ALIASES = ["momento", "cruzamento de médias", "cruzamento", "ma crossover", "sma crossover", "crossover"]

PARAMS = {
    "fast": {
        "type": "int",
        "default": 10,
        "min": 2,
        "max": 200,
        "doc": "Fast SMA window in bars.",
        "aliases": [
            "rápida",
            "média rápida",
            "sma rápida",
            "janela rápida",
            "média curta",
            "fast",
            "fast sma",
            "fast ma",
            "fast window",
            "fast average",
            "short sma",
            "short ma",
        ],
    },
    "slow": {
        "type": "int",
        "default": 20,
        "min": 3,
        "max": 400,
        "doc": "Slow SMA window in bars.",
        "aliases": [
            "lenta",
            "média lenta",
            "sma lenta",
            "janela lenta",
            "média longa",
            "slow",
            "slow sma",
            "slow ma",
            "slow window",
            "slow average",
            "long sma",
            "long ma",
        ],
    },
    "strength_scale": {
        "type": "float",
        "default": 1.0,
        "min": 0.1,
        "max": 10.0,
        "doc": "Trend t-stat that maps to a score of about 0.9.",
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
    return max(p.fast, p.slow) + 1


def features(bars, p):
    close = bars.close
    returns = np.diff(close, prepend=np.nan) / close
    return {
        "close": close,
        "fast": sma(close, p.fast),
        "slow": sma(close, p.slow),
        "trend": (close - shift(close, p.slow)) / close,
        "vol": rolling_std(returns, p.slow),
    }


def decide(f, p):
    up = crossed_above(f["fast"], f["slow"])
    down = crossed_below(f["fast"], f["slow"])
    side = np.where(up, 1, np.where(down, -1, 0))
    # Conviction: the move over the slow window in units of its volatility (a t-stat),
    # taken in the direction of the cross.
    with np.errstate(invalid="ignore", divide="ignore"):
        tstat = side * f["trend"] / (f["vol"] * np.sqrt(p.slow))
    score = np.where(side != 0, clip01(0.5 + 0.4 * np.tanh(tstat / p.strength_scale)), 0.0)
    reason = label(
        up,
        f"SMA{p.fast} crossed above SMA{p.slow}",
        down,
        f"SMA{p.fast} crossed below SMA{p.slow}",
    )
    return score, side, reason
