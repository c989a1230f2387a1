"""RSI mean reversion: buy when RSI is oversold, sell when it is overbought."""

import numpy as np

from sorte.indicators import clip01, label, rsi

ALIASES = ["reversão à média", "reversão", "mean reversion", "reversion", "estratégia do rsi", "rsi strategy"]

PARAMS = {
    "rsi_period": {
        "type": "int",
        "default": 14,
        "min": 2,
        "max": 100,
        "doc": "RSI window in bars.",
        "aliases": ["período do rsi", "janela do rsi", "rsi", "rsi period", "rsi window", "rsi length", "rsi lookback"],
    },
    "oversold": {
        "type": "float",
        "default": 30.0,
        "min": 1.0,
        "max": 50.0,
        "doc": "Buy below this RSI.",
        "aliases": ["sobrevendido", "sobrevenda", "nível de sobrevenda", "oversold", "oversold level", "buy level"],
    },
    "overbought": {
        "type": "float",
        "default": 70.0,
        "min": 50.0,
        "max": 99.0,
        "doc": "Sell above this RSI.",
        "aliases": [
            "sobrecomprado",
            "sobrecompra",
            "nível de sobrecompra",
            "overbought",
            "overbought level",
            "sell level",
        ],
    },
    "stop_loss": {
        "type": "float",
        "default": 0.03,
        "min": 0.0,
        "max": 0.5,
        "doc": "Stop loss as a fraction of the entry price (0 = none).",
    },
    "take_profit": {
        "type": "float",
        "default": 0.03,
        "min": 0.0,
        "max": 2.0,
        "doc": "Take profit as a fraction of the entry price (0 = none).",
    },
    "min_hold_s": {
        "type": "float",
        "default": 20.0,
        "min": 5.0,
        "max": 90.0,
        "doc": "Minimum seconds a position stays open before a signal may close it.",
    },
}


def lookback(p):
    return p.rsi_period + 1


def features(bars, p):
    return {"rsi": rsi(bars.close, p.rsi_period)}


def decide(f, p):
    r = f["rsi"]
    with np.errstate(invalid="ignore"):
        buy = r < p.oversold
        sell = r > p.overbought
    side = np.where(buy, 1, np.where(sell, -1, 0))
    # The deeper into the zone, the stronger the reversion case: the zone edge scores 0.6,
    # the extreme (RSI 0 or 100) scores 1.
    depth = np.where(buy, (p.oversold - r) / p.oversold, (r - p.overbought) / (100 - p.overbought))
    score = np.where(side != 0, clip01(0.6 + 0.4 * depth), 0.0)
    reason = label(
        buy,
        f"RSI{p.rsi_period} below {p.oversold:g} (oversold)",
        sell,
        f"RSI{p.rsi_period} above {p.overbought:g} (overbought)",
    )
    return score, side, reason
