"""B3's trading sessions: the regular hours, national holidays and B3's own closures.

The cash equities market trades from 10:00 to the end of its closing call, 18:00 São Paulo time
while New York is on standard time and 17:00 while New York observes daylight saving time (B3
follows the US switch, from the next Monday, to keep its hours against New York's). There is no
session on weekends, on national holidays (1 January, Tiradentes on 21 April, 1 May,
Independence on 7 September, Our Lady Aparecida on 12 October, All Souls on 2 November, the
Republic on 15 November, Black Consciousness on 20 November from 2024, Christmas), on Carnival
Monday and Tuesday, Good Friday and Corpus Christi (all from Easter), on Christmas Eve and on
the last business day of the year. Ash Wednesday opens late, at 13:00. All of it is in
``market.b3`` (``sorte.settings.b3``): the hours, extra closures, days to trade anyway and days
with other hours.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sorte.errors import ConfigError
from sorte.market.sessions import SessionCalendar
from sorte.settings.b3 import B3Settings, parse_hours

NEW_YORK = "America/New_York"
FIXED = {
    (1, 1): "Confraternização Universal",
    (4, 21): "Tiradentes",
    (5, 1): "Dia do Trabalho",
    (9, 7): "Independência do Brasil",
    (10, 12): "Nossa Senhora Aparecida",
    (11, 2): "Finados",
    (11, 15): "Proclamação da República",
    (12, 24): "Véspera de Natal",
    (12, 25): "Natal",
}
FROM_EASTER = {
    -48: "Carnaval (segunda-feira)",
    -47: "Carnaval (terça-feira)",
    -2: "Sexta-feira Santa",
    60: "Corpus Christi",
}
ASH_WEDNESDAY = -46  # days from Easter Sunday
BLACK_CONSCIOUSNESS = ((11, 20), "Dia Nacional de Zumbi e da Consciência Negra", 2024)  # national from 2024


def easter(year: int) -> date:
    """Easter Sunday (Gregorian calendar; the anonymous algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=512)
def closures(year: int) -> dict[date, str]:
    """The days of ``year`` without a session on B3 (weekends aside), with their names."""
    days = {date(year, m, d): name for (m, d), name in FIXED.items()}
    (m, d), name, since = BLACK_CONSCIOUSNESS
    if year >= since:
        days[date(year, m, d)] = name
    sunday = easter(year)
    days.update({sunday + timedelta(days=offset): name for offset, name in FROM_EASTER.items()})
    last = date(year, 12, 31)
    while last.weekday() >= 5:  # on a weekend, the Friday before
        last -= timedelta(days=1)
    days.setdefault(last, "último dia útil do ano")
    return days


def ash_wednesday(year: int) -> date:
    return easter(year) + timedelta(days=ASH_WEDNESDAY)


class B3Hours:
    """A day's session hours on B3 (open, close in local time), None when there is none."""

    def __init__(self, settings: B3Settings) -> None:
        self.settings = settings
        self.new_york = _zone(NEW_YORK)
        self.extra_closed = set(settings.holidays)
        self.open_anyway = set(settings.open_days)
        self.special = {day: parse_hours(text) for day, text in settings.special_hours.items()}

    def __call__(self, day: date) -> tuple[time, time] | None:
        if day in self.special:
            return self.special[day]
        if day.weekday() >= 5 or day in self.extra_closed:
            return None
        if day in closures(day.year) and day not in self.open_anyway:
            return None
        s = self.settings
        opens = s.ash_wednesday_open if day == ash_wednesday(day.year) else s.session_open
        closes = s.session_close_us_dst if s.session_close_us_dst and self.us_dst(day) else s.session_close
        return opens, closes

    def us_dst(self, day: date) -> bool:
        """Whether New York observes daylight saving time on ``day`` (at noon)."""
        return bool(datetime.combine(day, time(12), tzinfo=self.new_york).dst())


def b3_calendar(settings: B3Settings, interval_s: float) -> SessionCalendar:
    """B3's session calendar for candles of ``interval_s``."""
    return SessionCalendar(interval_s, B3Hours(settings), _zone(settings.timezone))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (install the tzdata package?)") from None
