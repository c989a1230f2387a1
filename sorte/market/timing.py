"""Time as the exchange sees it, and the waits between reconnects.

Whether a candle is closed is decided on the exchange's clock: a local clock a minute fast
would take the in-progress candle for closed, one a minute slow would hold every bar back.
The offset is measured with the venue's time endpoint (ccxt's ``fetch_time``), half the round
trip attributed to each way; a venue without one keeps the local clock."""

from __future__ import annotations

import math
import time

import structlog

from sorte.market.venue import Venue
from sorte.runtime.clock import Clock

log = structlog.get_logger("sorte.market")


class ExchangeClock:
    """The local clock plus the measured offset of the exchange's clock."""

    def __init__(self, local: Clock, venue: Venue) -> None:
        self.local, self.venue = local, venue
        self.offset_s = 0.0
        self._synced_at = -math.inf  # monotonic time of the last measurement
        self._unmeasured_told = False

    def now(self) -> float:
        return self.local.now() + self.offset_s

    def due(self, every_s: float) -> bool:
        return time.monotonic() - self._synced_at >= every_s

    async def sync(self) -> float:
        """Measure the offset; an exchange without a time endpoint keeps the local clock."""
        self._synced_at = time.monotonic()
        before = self.local.now()
        server_ms = await self.venue.server_time_ms()
        after = self.local.now()
        if server_ms is None:
            if not self._unmeasured_told:
                log.info("exchange_clock_unmeasured", exchange=self.venue.name, reason="no time endpoint")
                self._unmeasured_told = True
            return self.offset_s
        self.offset_s = float(server_ms) / 1000 - (before + after) / 2
        log.info("exchange_clock", exchange=self.venue.name, offset_s=round(self.offset_s, 3))
        return self.offset_s


def backoff_s(failures: int, first_s: float, max_s: float) -> float:
    """Exponential backoff: ``first_s`` after one failure, doubling, at most ``max_s``."""
    return min(max_s, first_s * 2 ** max(0, failures - 1))
