"""Bollinger breakout: buy a close above the upper band, sell a close below the lower band."""

import numpy as np

from sorte.indicators import clip01, label, rolling_std, shift, sma

ALIASES = ["rompimento", "bollinger", "bollinger breakout", "bandas de bollinger"]

PARAMS = {
    "period": {
        "type": "int",
        "default": 20,
        "min": 5,
        "max": 200,
        "doc": "Bollinger window in bars.",
        "aliases": [
            "período",
            "janela",
            "período das bandas",
            "period",
            "window",
            "bollinger period",
            "band period",
            "lookback",
        ],
    },
    "width": {
        "type": "float",
        "default": 2.0,
        "min": 0.5,
        "max": 5.0,
        "doc": "Band half-width in standard deviations.",
        "aliases": [
            "largura",
            "largura da banda",
            "desvios",
            "desvio padrão",
            "width",
            "band width",
            "deviations",
            "std devs",
            "sigma",
        ],
    },
    "volume_boost": {
        "type": "float",
        "default": 0.1,
        "min": 0.0,
        "max": 0.4,
        "doc": "Score added when volume is above its average over the window.",
        "aliases": ["bônus de volume", "reforço de volume", "volume", "volume boost", "volume bonus"],
    },
    "stop_loss": {
        "type": "float",
        "default": 0.025,
        "min": 0.0,
        "max": 0.5,
        "doc": "Stop loss as a fraction of the entry price (0 = none).",
    },
    "take_profit": {
        "type": "float",
        "default": 0.05,
        "min": 0.0,
        "max": 2.0,
        "doc": "Take profit as a fraction of the entry price (0 = none).",
    },
    "min_hold_s": {
        "type": "float",
        "default": 45.0,
        "min": 5.0,
        "max": 90.0,
        "doc": "Minimum seconds a position stays open before a signal may close it.",
    },
}


def lookback(p):
    return p.period + 1


def features(bars, p):
    mid = sma(bars.close, p.period)
    sd = rolling_std(bars.close, p.period)
    return {
        "close": bars.close,
        "prev_close": shift(bars.close),
        "upper": mid + p.width * sd,
        "lower": mid - p.width * sd,
        "prev_upper": shift(mid + p.width * sd),
        "prev_lower": shift(mid - p.width * sd),
        "band": 2 * p.width * sd,
        "volume_ratio": bars.volume / sma(bars.volume, p.period),
    }


def decide(f, p):
    with np.errstate(invalid="ignore", divide="ignore"):
        up = (f["close"] > f["upper"]) & (f["prev_close"] <= f["prev_upper"])
        down = (f["close"] < f["lower"]) & (f["prev_close"] >= f["prev_lower"])
        excess = np.where(up, f["close"] - f["upper"], f["lower"] - f["close"]) / f["band"]
        boost = np.where(f["volume_ratio"] > 1.0, p.volume_boost, 0.0)
    side = np.where(up, 1, np.where(down, -1, 0))
    score = np.where(side != 0, clip01(0.55 + 2.0 * excess + boost), 0.0)
    reason = label(
        up,
        f"close broke above the upper Bollinger band ({p.period}, {p.width:g}sd)",
        down,
        f"close broke below the lower Bollinger band ({p.period}, {p.width:g}sd)",
    )
    return score, side, reason
