"""B3's session calendar: the hours, holidays and closures, and the sequence numbers that count
session candles only (contiguous across nights, weekends and holidays)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from sorte.market.b3.calendar import b3_calendar, closures, easter
from sorte.market.sessions import SessionCalendar
from sorte.settings.b3 import B3Settings

SP = ZoneInfo("America/Sao_Paulo")
HOUR = 3600.0


def at(day: date, hh: int, mm: int = 0) -> int:
    """Epoch ms of a São Paulo local time."""
    return int(datetime.combine(day, time(hh, mm), tzinfo=SP).timestamp() * 1000)


def local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, SP)


def hours_of(cal: SessionCalendar, day: date) -> tuple[str, str] | None:
    session = cal.session(day)
    return None if session is None else (local(session[0]).strftime("%H:%M"), local(session[1]).strftime("%H:%M"))


@pytest.fixture()
def cal() -> SessionCalendar:
    return b3_calendar(B3Settings(), HOUR)


@pytest.mark.parametrize(
    ("year", "sunday"),
    [(2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5))]
    + [(2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2008, date(2008, 3, 23))],
)
def test_easter(year, sunday):
    assert easter(year) == sunday


def test_the_closures_of_2026():
    assert sorted(closures(2026)) == [
        date(2026, 1, 1),
        date(2026, 2, 16),  # Carnival Monday
        date(2026, 2, 17),  # Carnival Tuesday
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 21),
        date(2026, 5, 1),
        date(2026, 6, 4),  # Corpus Christi
        date(2026, 9, 7),
        date(2026, 10, 12),
        date(2026, 11, 2),
        date(2026, 11, 15),
        date(2026, 11, 20),  # national from 2024
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 31),  # the last business day of the year
    ]
    assert date(2023, 11, 20) not in closures(2023)
    # The last business day when 31 December is on a weekend: the Friday before.
    assert date(2022, 12, 30) in closures(2022) and date(2023, 12, 29) in closures(2023)


def test_weekends_holidays_and_the_late_open(cal):
    assert hours_of(cal, date(2026, 2, 13)) == ("10:00", "18:00")  # Friday
    assert hours_of(cal, date(2026, 2, 14)) is None and hours_of(cal, date(2026, 2, 15)) is None
    assert hours_of(cal, date(2026, 2, 16)) is None and hours_of(cal, date(2026, 2, 17)) is None  # Carnival
    assert hours_of(cal, date(2026, 2, 18)) == ("13:00", "18:00")  # Ash Wednesday
    assert hours_of(cal, date(2026, 4, 3)) is None  # Good Friday
    assert hours_of(cal, date(2026, 4, 21)) is None  # Tiradentes, a Tuesday
    assert cal.session(date(2026, 2, 18))[2] == 5  # 13:00 to 18:00 in 1-hour candles


def test_the_close_follows_new_york_daylight_saving_time(cal):
    # New York switches on Sunday 8 March and Sunday 1 November 2026; B3 the next day.
    assert hours_of(cal, date(2026, 3, 6)) == ("10:00", "18:00")
    assert hours_of(cal, date(2026, 3, 9)) == ("10:00", "17:00")
    assert hours_of(cal, date(2026, 10, 30)) == ("10:00", "17:00")
    assert hours_of(cal, date(2026, 11, 3)) == ("10:00", "18:00")
    fixed = b3_calendar(B3Settings(session_close_us_dst=None), HOUR)
    assert hours_of(fixed, date(2026, 3, 9)) == ("10:00", "18:00")


def test_zone_handling_uses_the_zone_database_not_a_fixed_offset(cal):
    # No daylight saving time in Brazil since 2019: 10:00 is 13:00 UTC all year ...
    for day in (date(2026, 1, 15), date(2026, 7, 15)):
        assert datetime.fromtimestamp(cal.session(day)[0] / 1000, UTC).hour == 13
    # ... while in January 2018 São Paulo still was on summer time (UTC-2): 10:00 was 12:00 UTC.
    assert datetime.fromtimestamp(cal.session(date(2018, 1, 15))[0] / 1000, UTC).hour == 12
    # Brazil's old switch happened at midnight: the session that day is whole.
    assert hours_of(cal, date(2018, 11, 5)) == ("10:00", "18:00")


def test_seq_is_contiguous_across_a_weekend_and_carnival(cal):
    friday_last = cal.seq(at(date(2026, 2, 13), 17))
    wednesday_first = cal.seq(at(date(2026, 2, 18), 13))
    assert wednesday_first == friday_last + 1
    assert cal.open_ms(friday_last + 1) == at(date(2026, 2, 18), 13)
    assert cal.close_ms(friday_last) == at(date(2026, 2, 13), 18)
    # Nights count nothing either: Thursday's last candle and Friday's first.
    assert cal.seq(at(date(2026, 2, 13), 10)) == cal.seq(at(date(2026, 2, 12), 17)) + 1


def test_seq_and_open_time_round_trip_over_years():
    for interval in (HOUR, 300.0, 5400.0):
        cal = b3_calendar(B3Settings(), interval)
        day, last = date(2025, 12, 1), None
        while day < date(2026, 3, 20):
            session = cal.session(day)
            if session is not None:
                opens = list(range(session[0], session[1], cal.interval_ms))
                for t in opens:
                    seq = cal.seq(t)
                    assert last is None or seq == last + 1, (day, local(t))
                    assert cal.open_ms(seq) == t
                    last = seq
            day += timedelta(days=1)
    # Far from the epoch, both ways, and from a cold calendar (no year looked at yet).
    for day in (date(1999, 6, 1), date(2041, 6, 3)):
        cold = b3_calendar(B3Settings(), HOUR)
        seq = cold.seq(at(day, 11))
        assert b3_calendar(B3Settings(), HOUR).open_ms(seq) == at(day, 11)


def test_the_last_candle_of_a_session_ends_with_it():
    cal = b3_calendar(B3Settings(), 5400)  # 90 minutes: 10:00 ... 16:00 (to 17:30), 17:30 to 18:00
    day = date(2026, 2, 13)
    last = cal.seq(at(day, 17, 30))
    assert cal.close_ms(last) == at(day, 18)
    assert cal.open_ms(last + 1) == at(date(2026, 2, 18), 13)


def test_daily_candles_are_one_per_session_whatever_their_stamp():
    cal = b3_calendar(B3Settings(), 86_400)
    wed = date(2026, 2, 18)
    # brapi stamps a daily candle with the regular open; Ash Wednesday opened at 13:00.
    seq = cal.seq(at(wed, 10))
    assert cal.open_ms(seq) == at(wed, 13) and cal.close_ms(seq) == at(wed, 18)
    assert seq == cal.seq(at(date(2026, 2, 13), 10)) + 1
    assert cal.seq_at(at(date(2026, 2, 14), 10)) is None  # Saturday


def test_no_candle_opens_outside_a_session(cal):
    assert cal.seq_at(at(date(2026, 2, 13), 9)) is None  # before the open
    assert cal.seq_at(at(date(2026, 2, 13), 18)) is None  # at the close
    assert cal.seq_at(at(date(2026, 2, 16), 11)) is None  # Carnival
    assert cal.seq_at(at(date(2026, 2, 18), 11)) is None  # Ash Wednesday before 13:00


def test_time_stands_still_while_the_market_is_closed(cal):
    friday_last = cal.seq(at(date(2026, 2, 13), 17))
    s = lambda day, hh, mm=0: at(day, hh, mm) / 1000  # noqa: E731
    # At 17:30 the 16:00 candle is the newest closed; from 18:00 until Wednesday 14:00, Friday's last.
    assert cal.newest_closed_seq(s(date(2026, 2, 13), 17, 30)) == friday_last - 1
    for moment in (
        s(date(2026, 2, 13), 18),
        s(date(2026, 2, 14), 12),
        s(date(2026, 2, 17), 23),
        s(date(2026, 2, 18), 13, 59),
    ):
        assert cal.newest_closed_seq(moment) == friday_last
    assert cal.newest_closed_seq(s(date(2026, 2, 18), 14)) == friday_last + 1
    # Candles behind Friday's last bar: none over the weekend and Carnival, half a candle at 13:30.
    assert cal.behind(friday_last, s(date(2026, 2, 16), 12)) == 0
    assert cal.behind(friday_last, s(date(2026, 2, 18), 13, 30)) == pytest.approx(0.5)
    assert cal.behind(friday_last - 1, s(date(2026, 2, 13), 17, 30)) == pytest.approx(0.5)
    assert cal.in_session(s(date(2026, 2, 18), 13)) and not cal.in_session(s(date(2026, 2, 18), 12, 59))


def test_while_closed_the_calendar_says_when_the_next_session_opens(cal):
    s = lambda day, hh, mm=0: at(day, hh, mm) / 1000  # noqa: E731
    ash_wednesday = at(date(2026, 2, 18), 13) / 1000
    # Friday after the close, the weekend and Carnival: Ash Wednesday's late open.
    for moment in (s(date(2026, 2, 13), 18), s(date(2026, 2, 14), 12), s(date(2026, 2, 17), 23, 59)):
        assert cal.next_open(moment) == ash_wednesday
    assert cal.next_open(s(date(2026, 2, 18), 12, 59)) == ash_wednesday  # the same day, before it opens
    assert cal.next_open(s(date(2026, 2, 19), 7)) == at(date(2026, 2, 19), 10) / 1000
    assert cal.next_open(s(date(2026, 2, 18), 13)) is None and cal.next_open(s(date(2026, 2, 13), 17, 59)) is None
    # A year's last business day is closed: the next session is on 4 January 2027, a Monday.
    assert cal.next_open(s(date(2026, 12, 30), 18)) == at(date(2027, 1, 4), 10) / 1000


def test_extra_closures_open_days_and_special_hours():
    settings = B3Settings(
        holidays=[date(2026, 1, 26)],
        open_days=[date(2026, 11, 20)],
        special_hours={date(2026, 12, 30): "10:00-16:00", date(2026, 2, 16): "11:00-15:00"},
        session_open=time(10, 30),
    )
    cal = b3_calendar(settings, HOUR)
    assert hours_of(cal, date(2026, 1, 26)) is None
    assert hours_of(cal, date(2026, 11, 20)) == ("10:30", "18:00")
    assert hours_of(cal, date(2026, 12, 30)) == ("10:00", "16:00")
    assert hours_of(cal, date(2026, 2, 16)) == ("11:00", "15:00")  # Carnival Monday, opened on purpose


@pytest.mark.parametrize(
    "bad",
    [
        {"special_hours": {"2026-12-30": "16:00-10:00"}},
        {"special_hours": {"2026-12-30": "ten to four"}},
        {"session_open": "18:30"},
        {"ash_wednesday_open": "17:30"},
    ],
)
def test_hours_that_cannot_be_are_refused(bad):
    with pytest.raises(ValidationError):
        B3Settings(**bad)
