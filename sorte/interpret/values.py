"""A number read from a request, turned into the value a knob gets: percents of fractions,
points, relative and absolute changes, whole numbers and bounds. Whatever is not certain raises
``Unsure`` with what to ask or why to refuse."""

from __future__ import annotations

from dataclasses import dataclass

from sorte.interpret import vocabulary as V
from sorte.interpret.numbers import Quantity

Value = bool | int | float


class Unsure(Exception):
    """One value could not be read with certainty: the reading becomes a question or a refusal."""

    def __init__(self, action: str, key: str, **values: object) -> None:
        self.action, self.key, self.values = action, key, values


@dataclass
class Knob:
    """One value a request may set: a parameter, MIN_CONFIDENCE or a stage's field."""

    target: str
    current: bool | int | float
    type: str  # int | float | bool
    min: float | None
    max: float | None
    percent: bool  # "3%" means 0.03 here (fractions of a price, scores in [0, 1])
    seconds: bool = False  # "1 minuto" means 60 here

    def bounds(self) -> str:
        return f"[{show(self.min)}, {show(self.max)}]"


def relative(knob: Knob, q: Quantity, direction: int) -> Value:
    if direction == 0:
        raise Unsure("ask", "which_way", target=knob.target, current=show(knob.current))
    if q.unit == "percent":
        if knob.percent:
            raise Unsure("ask", "percent_or_points", target=knob.target, current=show(knob.current), n=show(q.value))
        return checked(knob, knob.current * (1 + direction * q.value / 100), direction)
    delta = q.value
    if knob.percent and (q.unit in ("points", "pp") or q.value >= 1):
        if q.unit not in ("points", "pp"):
            raise Unsure("ask", "percent_or_points", target=knob.target, current=show(knob.current), n=show(q.value))
        delta = q.value / 100
    return checked(knob, knob.current + direction * delta, direction)


def absolute(knob: Knob, q: Quantity, direction: int, prep: str) -> Value:
    value = q.value
    if q.unit == "percent":
        if knob.percent:
            value = q.value / 100
        elif direction != 0 and prep not in V.TO:  # "aumenta a janela 50%": by half again
            return checked(knob, knob.current * (1 + direction * q.value / 100), direction)
        else:
            raise Unsure("ask", "percent_of_what", target=knob.target, current=show(knob.current), n=show(q.value))
    elif knob.percent and value >= 1:
        raise Unsure("ask", "is_it_percent", target=knob.target, n=show(value), as_percent=show(value / 100))
    if direction > 0 and value < knob.current or direction < 0 and value > knob.current:
        raise Unsure("ask", "contradiction", target=knob.target, current=show(knob.current), n=show(value))
    return checked(knob, value, direction=0)


def checked(knob: Knob, value: float, direction: int) -> Value:
    value = round(float(value), 10)
    if knob.type == "int":
        if abs(value - round(value)) > 1e-9:
            raise Unsure("refuse", "not_whole", target=knob.target, value=show(value))
        value = int(round(value))
    if (knob.min is not None and value < knob.min) or (knob.max is not None and value > knob.max):
        raise Unsure("refuse", "out_of_bounds", target=knob.target, value=show(value), bounds=knob.bounds())
    return value


def show(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
