"""Time as the exchange sees it, and the waits between reconnects.

Whether a candle is closed is decided on the exchange's clock: a local clock a minute fast
would take the in-progress candle for closed, one a minute slow would hold every bar back.
The offset is measured with ``fetch_time`` (half the round trip attributed to each way)."""

from __future__ import annotations

import math
import time

import structlog

from sorte.runtime.ccxt_feed import ExchangeCalls
from sorte.runtime.clock import Clock

log = structlog.get_logger("sorte.market")


class ExchangeClock:
    """The local clock plus the measured offset of the exchange's clock."""

    def __init__(self, local: Clock, calls: ExchangeCalls) -> None:
        self.local, self.calls = local, calls
        self.offset_s = 0.0
        self._synced_at = -math.inf  # monotonic time of the last measurement

    def now(self) -> float:
        return self.local.now() + self.offset_s

    def due(self, every_s: float) -> bool:
        return time.monotonic() - self._synced_at >= every_s

    async def sync(self) -> float:
        """Measure the offset; an exchange without a time endpoint keeps the local clock."""
        self._synced_at = time.monotonic()
        if not self.calls.exchange.has.get("fetchTime"):
            log.info("exchange_clock_unmeasured", exchange=self.calls.name, reason="no fetchTime")
            return self.offset_s
        before = self.local.now()
        server_ms = await self.calls.call("the exchange time", self.calls.exchange.fetch_time)
        after = self.local.now()
        self.offset_s = float(server_ms) / 1000 - (before + after) / 2
        log.info("exchange_clock", exchange=self.calls.name, offset_s=round(self.offset_s, 3))
        return self.offset_s


def backoff_s(failures: int, first_s: float, max_s: float) -> float:
    """Exponential backoff: ``first_s`` after one failure, doubling, at most ``max_s``."""
    return min(max_s, first_s * 2 ** max(0, failures - 1))
