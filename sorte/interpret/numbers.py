"""Numbers as traders write them: "3%", "3 por cento", "0,7", "1.5x", "50 barras", "vinte",
"dobra", "+5 pontos". Works on the interpreter's words (``text.words``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Unit = Literal["", "percent", "points", "pp", "times", "bars", "seconds", "minutes", "deviations"]

_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)?)(%|x|s|pp|pts?)?$")
_TIMES = re.compile(r"^x(\d+(?:[.,]\d+)?)$")  # "slow x2"
_UNITS: dict[tuple[str, ...], Unit] = {
    ("pontos", "percentuais"): "pp",
    ("ponto", "percentual"): "pp",
    ("percentage", "points"): "pp",
    ("percentage", "point"): "pp",
    ("p", "p"): "pp",
    ("pp",): "pp",
    ("por", "cento"): "percent",
    ("porcento",): "percent",
    ("percent",): "percent",
    ("pct",): "percent",
    ("%",): "percent",
    ("pontos",): "points",
    ("ponto",): "points",
    ("points",): "points",
    ("point",): "points",
    ("pts",): "points",
    ("pt",): "points",
    ("x",): "times",
    ("vezes",): "times",
    ("times",): "times",
    ("barras",): "bars",
    ("barra",): "bars",
    ("bars",): "bars",
    ("bar",): "bars",
    ("candles",): "bars",
    ("candle",): "bars",
    ("velas",): "bars",
    ("periodos",): "bars",
    ("periods",): "bars",
    ("segundos",): "seconds",
    ("segundo",): "seconds",
    ("seconds",): "seconds",
    ("second",): "seconds",
    ("secs",): "seconds",
    ("sec",): "seconds",
    ("seg",): "seconds",
    ("desvios", "padrao"): "deviations",
    ("desvio", "padrao"): "deviations",
    ("standard", "deviations"): "deviations",
    ("desvios",): "deviations",
    ("sigma",): "deviations",
    ("sigmas",): "deviations",
    ("std",): "deviations",
    ("stds",): "deviations",
    ("minutos",): "minutes",
    ("minuto",): "minutes",
    ("minutes",): "minutes",
    ("minute",): "minutes",
    ("mins",): "minutes",
}
_SUFFIX: dict[str, Unit] = {"%": "percent", "x": "times", "s": "seconds", "pp": "pp", "pt": "points", "pts": "points"}
_SMALL = {
    "zero": 0, "um": 1, "uma": 1, "one": 1, "dois": 2, "duas": 2, "two": 2, "tres": 3, "three": 3,
    "quatro": 4, "four": 4, "cinco": 5, "five": 5, "seis": 6, "six": 6, "sete": 7, "seven": 7,
    "oito": 8, "eight": 8, "nove": 9, "nine": 9, "dez": 10, "ten": 10, "onze": 11, "eleven": 11,
    "doze": 12, "twelve": 12, "treze": 13, "thirteen": 13, "quatorze": 14, "catorze": 14,
    "fourteen": 14, "quinze": 15, "fifteen": 15, "dezesseis": 16, "sixteen": 16, "dezessete": 17,
    "seventeen": 17, "dezoito": 18, "eighteen": 18, "dezenove": 19, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "vinte": 20, "twenty": 20, "trinta": 30, "thirty": 30, "quarenta": 40, "forty": 40,
    "cinquenta": 50, "fifty": 50, "sessenta": 60, "sixty": 60, "setenta": 70, "seventy": 70,
    "oitenta": 80, "eighty": 80, "noventa": 90, "ninety": 90, "cem": 100, "hundred": 100,
}  # fmt: skip
#: Words that are a factor by themselves ("dobra o período").
MULTIPLIERS = {
    "dobra": 2.0, "dobrar": 2.0, "dobre": 2.0, "dobro": 2.0, "double": 2.0, "twice": 2.0,
    "triplica": 3.0, "triplicar": 3.0, "triplo": 3.0, "triple": 3.0,
    "metade": 0.5, "halve": 0.5, "half": 0.5,
}  # fmt: skip
#: Words that may be an article as well as "one": a number only right after these.
_ARTICLE_ONE = {"um", "uma", "one"}
_BEFORE_ONE = {"para", "pra", "pro", "em", "to", "by", "de", "of"}


@dataclass(frozen=True)
class Quantity:
    value: float
    start: int  # first word
    end: int  # one past the last word (number and unit)
    unit: Unit = ""
    sign: int = 0  # +1 / -1 when written "+5" / "-5"; 0 otherwise

    @property
    def whole(self) -> bool:
        return float(self.value).is_integer()


def quantities(found: list[str]) -> list[Quantity]:
    """Every number in the words, with its unit and written sign, in order."""
    out: list[Quantity] = []
    i = 0
    while i < len(found):
        got = _number_at(found, i)
        if got is None:
            i += 1
            continue
        value, end, unit = got
        if not unit:
            unit, end = _unit_at(found, end)
        if (
            unit
            and found[end : end + 2] in (["e", "meio"], ["e", "meia"])
            or found[end : end + 3] == ["and", "a", "half"]
        ):
            value, end = value + 0.5, end + (2 if found[end] == "e" else 3)  # "um minuto e meio"
        sign = 0
        if i > 0 and found[i - 1] in "+-" and found[i - 1] and (i < 2 or _number_at(found, i - 2) is None):
            sign = 1 if found[i - 1] == "+" else -1
        out.append(Quantity(value, i, end, unit, sign))
        i = end
    return out


def _number_at(found: list[str], i: int) -> tuple[float, int, Unit] | None:
    word = found[i]
    times = _TIMES.match(word)
    if times:
        return float(times.group(1).replace(",", ".")), i + 1, "times"
    if word in ("a", "an") and _unit_at(found, i + 1)[0] in ("minutes", "seconds"):
        return 1.0, i + 1, ""  # "a minute and a half"
    m = _NUMBER.match(word)
    if m:
        value = float(m.group(1).replace(",", "."))
        if i + 2 < len(found) and found[i + 1] in ("e", "and") and found[i + 2] in ("meio", "half"):
            return value + 0.5, i + 3, ""
        return value, i + 1, _SUFFIX.get(m.group(2) or "", "")
    if word in _TENS:
        value, end = float(_TENS[word]), i + 1
        if end + 1 < len(found) and found[end] in ("e", "and") and found[end + 1] in _SMALL:
            return value + _SMALL[found[end + 1]], end + 2, ""
        if end < len(found) and found[end] in _SMALL and _SMALL[found[end]] < 10:
            return value + _SMALL[found[end]], end + 1, ""
        return value, end, ""
    if word in _SMALL:
        if word in _ARTICLE_ONE and not (i > 0 and found[i - 1] in _BEFORE_ONE):
            unit, _ = _unit_at(found, i + 1)
            halves = i + 2 < len(found) and found[i + 1] in ("e", "and") and found[i + 2] in ("meio", "half")
            if not unit and not halves:
                return None
        value = float(_SMALL[word])
        if i + 2 < len(found) and found[i + 1] == "e" and found[i + 2] == "meio":
            return value + 0.5, i + 3, ""
        return value, i + 1, ""
    if word in ("zera", "zerar", "zere", "zerou"):  # "zera o stop": to 0 (0 = none)
        return 0.0, i + 1, ""
    if word in ("meio", "meia", "half") and not (i > 0 and found[i - 1] in ("e", "and")):
        skip = i + 2 if i + 1 < len(found) and found[i + 1] in ("a", "an") else i + 1
        unit, end = _unit_at(found, skip)
        if unit:  # "meio ponto percentual", "half a percentage point"
            return 0.5, end, unit
        return (0.5, i + 1, "") if word != "half" else None
    return None


def _unit_at(found: list[str], i: int) -> tuple[Unit, int]:
    for size in (2, 1):
        key = tuple(found[i : i + size])
        if len(key) == size and key in _UNITS:
            return _UNITS[key], i + size
    return "", i
