"""B3 through brapi (``market.b3``): the HTTP API, its token, and B3's trading sessions.

Used when ``runtime.feed`` is ``b3``; the timeframe is ``exchange.timeframe``, as for ccxt.
Session times are local to ``timezone`` (São Paulo). B3 closes an hour earlier while New York
observes daylight saving time (``session_close_us_dst``); national holidays and B3's own closures
are computed (Easter-based ones included), ``holidays``, ``open_days`` and ``special_hours``
adjust them. Changing the sessions of past dates renumbers the bars after them: bars count
session candles only, so add closures before they happen."""

from __future__ import annotations

import re
from datetime import date, time

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

# Sorte's timeframe (``exchange.timeframe``) -> brapi's ``interval``; weeks and months do not fit
# a session calendar and are left out.
BRAPI_INTERVALS = {
    "1m": "1m",
    "2m": "2m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1h": "1h",
    "90m": "90m",
    "1d": "1d",
}
HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[time, time]:
    """``"13:00-18:00"`` as (open, close); a ValueError naming the problem otherwise."""
    match = HOURS.match(text)
    if not match:
        raise ValueError(f"session hours {text!r} must read HH:MM-HH:MM, e.g. 13:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"session hours {text!r} are not times of day")
    opens, closes = time(h1, m1), time(h2, m2)
    if closes <= opens:
        raise ValueError(f"session hours {text!r} close before they open")
    return opens, closes


class B3Settings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default

    base_url: str = Field("https://brapi.dev", description="brapi's address (a local server in tests)")
    token: SecretStr | None = Field(
        None, description="brapi token; environment or .env only (SORTE_MARKET__B3__TOKEN, else BRAPI_TOKEN)"
    )
    intervals: dict[str, str] = Field(
        default_factory=lambda: dict(BRAPI_INTERVALS), description="exchange.timeframe -> brapi interval"
    )
    delay_s: float = Field(
        0.0, ge=0, le=3600, description="How late the token's plan delivers candles (e.g. 900); added to grace_s"
    )
    timezone: str = Field("America/Sao_Paulo", description="The zone session times are given in")
    session_open: time = Field(time(10, 0), description="Regular session open (continuous trading starts)")
    session_close: time = Field(time(18, 0), description="Regular session close, after the closing call")
    session_close_us_dst: time | None = Field(
        time(17, 0), description="The close while New York observes daylight saving time (None: always session_close)"
    )
    ash_wednesday_open: time = Field(time(13, 0), description="Ash Wednesday's late open")
    holidays: list[date] = Field(default_factory=list, description="Extra days without a session")
    open_days: list[date] = Field(default_factory=list, description="Computed holidays on which B3 trades anyway")
    special_hours: dict[date, str] = Field(
        default_factory=dict, description="Days with other hours, e.g. {2026-12-30: '10:00-16:00'}"
    )

    @field_validator("special_hours")
    @classmethod
    def _hours_read(cls, value: dict[date, str]) -> dict[date, str]:
        for text in value.values():
            parse_hours(text)
        return value

    @model_validator(mode="after")
    def _opens_before_it_closes(self) -> B3Settings:
        for close in (self.session_close, self.session_close_us_dst):
            if close is not None and close <= self.session_open:
                raise ValueError("market.b3: the session must close after it opens")
        if min(c for c in (self.session_close, self.session_close_us_dst) if c is not None) <= self.ash_wednesday_open:
            raise ValueError("market.b3.ash_wednesday_open must be before the session closes")
        return self
