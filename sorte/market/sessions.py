"""A calendar of trading sessions: candles exist only while the market is open.

Each session day has its hours (local to a time zone); its candles open at the session's open
and every interval after it, the last one closing with the session (shorter, when the interval
does not divide the session). A timeframe as long as the session or longer (``1d``) is one
candle per session.

Sequence numbers count session candles only, from the first candle of ``EPOCH_YEAR``: the candle
after Friday's last one is Monday's first, one number on. So the numbers stay contiguous across
nights, weekends and holidays, and depend on the hours and closures of every day since the
epoch: changing the sessions of a past day renumbers every candle after it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sorte.errors import DataError
from sorte.market.venue import Calendar

EPOCH_YEAR = 2000
FIRST_YEAR, LAST_YEAR = 1971, 2200  # the years a calendar numbers

Hours = Callable[[date], tuple[time, time] | None]  # a day's (open, close), None when closed
Session = tuple[int, int, int]  # (open ms, close ms, candles)


class SessionCalendar(Calendar):
    def __init__(self, interval_s: float, hours: Hours, tz: ZoneInfo) -> None:
        if interval_s <= 0:
            raise ValueError("a session calendar needs a positive interval")
        self.interval_s = interval_s
        self.interval_ms = int(round(interval_s * 1000))
        self.hours, self.tz = hours, tz
        self._sessions: dict[date, Session | None] = {}
        self._days: dict[int, list[int]] = {}  # year -> candles before each of its days (and after the last)
        self._year_start: dict[int, int] = {EPOCH_YEAR: 0}  # year -> seq of its first candle
        self._hint = EPOCH_YEAR  # the year of the last lookup by seq: lookups stay close in time

    # -- days ----------------------------------------------------------------------------------
    def session(self, day: date) -> Session | None:
        """The day's session as (open ms, close ms, candles), None when the market is closed."""
        if day not in self._sessions:
            hours = self.hours(day)
            if hours is None:
                self._sessions[day] = None
            else:
                opens = _epoch_ms(datetime.combine(day, hours[0], tzinfo=self.tz))
                closes = _epoch_ms(datetime.combine(day, hours[1], tzinfo=self.tz))
                if closes <= opens:
                    raise DataError(f"the session of {day} closes ({hours[1]}) before it opens ({hours[0]})")
                self._sessions[day] = (opens, closes, -(-(closes - opens) // self.interval_ms))
        return self._sessions[day]

    def day_of(self, t_ms: float) -> date:
        """The local date at ``t_ms``."""
        return datetime.fromtimestamp(t_ms / 1000, self.tz).date()

    def day_start(self, day: date) -> int:
        """The seq of the first candle on ``day`` or after it."""
        return self._start_of_year(day.year) + self._days_of(day.year)[day.timetuple().tm_yday - 1]

    # -- Calendar ------------------------------------------------------------------------------
    def seq_at(self, open_ms: float) -> int | None:
        day = self.day_of(open_ms)
        session = self.session(day)
        if session is None:
            return None
        opens, closes, n = session
        if open_ms >= closes:
            return None
        if open_ms < opens:  # one candle a session (1d) may be stamped with the day's regular open or midnight
            return self.day_start(day) if n == 1 else None
        return self.day_start(day) + int((open_ms - opens) // self.interval_ms)

    def open_ms(self, seq: int) -> int:
        opens, _, k = self._locate(seq)
        return opens + k * self.interval_ms

    def close_ms(self, seq: int) -> int:
        opens, closes, k = self._locate(seq)
        return min(opens + (k + 1) * self.interval_ms, closes)

    def position(self, t_s: float) -> float:
        t_ms = t_s * 1000
        day = self.day_of(t_ms)
        base = self.day_start(day)
        session = self.session(day)
        if session is None:
            return float(base)
        opens, closes, n = session
        if t_ms < opens:
            return float(base)
        if t_ms >= closes:
            return float(base + n)
        k = int((t_ms - opens) // self.interval_ms)
        start = opens + k * self.interval_ms
        end = min(start + self.interval_ms, closes)
        return base + k + (t_ms - start) / (end - start)

    def in_session(self, t_s: float) -> bool:
        session = self.session(self.day_of(t_s * 1000))
        return session is not None and session[0] <= t_s * 1000 < session[1]

    # -- numbering -----------------------------------------------------------------------------
    def _days_of(self, year: int) -> list[int]:
        if year not in self._days:
            if not FIRST_YEAR <= year <= LAST_YEAR:
                raise DataError(f"the session calendar numbers the years {FIRST_YEAR} to {LAST_YEAR}, not {year}")
            starts, day = [0], date(year, 1, 1)
            while day.year == year:
                session = self.session(day)
                starts.append(starts[-1] + (session[2] if session else 0))
                day += timedelta(days=1)
            self._days[year] = starts
        return self._days[year]

    def _start_of_year(self, year: int) -> int:
        """The seq of the first candle on or after 1 January of ``year``, counted from the epoch."""
        if year not in self._year_start:
            if year > EPOCH_YEAR:
                self._year_start[year] = self._start_of_year(year - 1) + self._days_of(year - 1)[-1]
            else:
                self._year_start[year] = self._start_of_year(year + 1) - self._days_of(year)[-1]
        return self._year_start[year]

    def _locate(self, seq: int) -> Session:
        """(open ms of its session, close ms of its session, index in the session) of ``seq``."""
        year = self._hint
        while seq < self._start_of_year(year):
            year -= 1
        while seq >= self._start_of_year(year + 1):
            year += 1
        self._hint = year
        starts = self._days_of(year)
        rel = seq - self._start_of_year(year)
        i = bisect.bisect_right(starts, rel) - 1
        session = self.session(date(year, 1, 1) + timedelta(days=i))
        assert session is not None  # a day a candle is counted on has a session
        return session[0], session[1], rel - starts[i]


def _epoch_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))
