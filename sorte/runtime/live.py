"""Live sessions: the same runtime on an exchange's live candles (``CcxtPollingFeed``).

``runtime.mode == "paper"`` trades on paper (``PaperBroker``) against live data;
``runtime.mode == "live"`` sends real orders (``CcxtBroker``), which needs the explicit
``runtime.live_trading`` flag and credentials. Paper-on-live and real trading keep separate
ledgers, and both resume from theirs after a restart exactly like the replay session.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import structlog

from sorte import paths
from sorte.config import Settings
from sorte.runtime.assembly import LIVE_DEFAULT_INTERVAL_S, PaperSession, check_live_credentials, configured_cascade
from sorte.runtime.broker import PaperBroker
from sorte.runtime.ccxt_feed import CcxtPollingFeed
from sorte.runtime.control import RuntimeControl
from sorte.runtime.engine import Listener, RunSummary, Runtime
from sorte.runtime.executor import Executor
from sorte.runtime.ledger import Ledger, open_owned
from sorte.runtime.live_broker import CcxtBroker
from sorte.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("sorte.live")


class LiveRuntime(Runtime):
    """The runtime, plus what only a live feed needs: a warm-up window on a fresh start
    (the replay session gets it from the file, a resumed one from ``Runtime.resume``) and
    closing the exchange connection when the run ends."""

    feed: CcxtPollingFeed

    async def resume(self) -> None:
        await super().resume()
        if self.cursor:
            return
        self.cursor = await self.feed.prime()  # start after the latest closed bar
        for sym, seq in self.cursor.items():
            window = await self.feed.history(sym, seq + 1, self.cascade.window)
            self.buffers[sym].extend(window)
            if len(window):
                self.broker.last_price[sym] = float(window.close[-1])
        log.info("live_warm_up", cursor=self.cursor, window=self.cascade.window)

    async def run(self, max_steps: int | None = None) -> RunSummary:
        try:
            return await super().run(max_steps)
        finally:
            await self.feed.close()


def build_live_session(
    settings: Settings,
    ledger_path: Path | None = None,
    fresh: bool = False,
    listener: Listener | None = None,
    metrics: RuntimeMetrics | None = None,
    feed: CcxtPollingFeed | None = None,
) -> PaperSession:
    """A runtime on live exchange data: paper broker in paper mode, real orders in live mode.
    ``feed`` replaces the default ``CcxtPollingFeed(settings)`` (its clock, timeouts)."""
    live = settings.runtime.mode == "live"
    if live:
        check_live_credentials(settings)
    metrics = metrics or RuntimeMetrics()
    cascade = configured_cascade(settings, metrics.registry)
    feed = feed or CcxtPollingFeed(settings)
    broker: PaperBroker
    if live:
        broker = CcxtBroker(settings, timeout_s=feed.timeout_s, rate_limit=feed.exchange.enableRateLimit)
        balances = broker.verify()  # bad keys or an unreachable exchange fail here, not mid-run
        log.info("live_account", exchange=settings.exchange.name, assets=sorted(balances))
    else:
        broker = PaperBroker(settings.broker)
    ledger_path = ledger_path or paths.live_feed_ledger(settings.data_dir, live)
    ledger = _open_ledger(ledger_path, _fingerprint(settings, feed), fresh)
    interval = settings.runtime.batch_interval_s
    control = RuntimeControl(
        batch_interval_s=LIVE_DEFAULT_INTERVAL_S if interval is None else interval,
        file=paths.control_file(settings.data_dir),
    )
    executor = Executor(broker, settings.risk, settings.broker)
    runtime = LiveRuntime(cascade, feed, broker, executor, feed.clock, control, ledger, metrics, listener)
    return PaperSession(runtime, ledger, ledger_path, None)


def _fingerprint(settings: Settings, feed: CcxtPollingFeed) -> str:
    """Which market a ledger belongs to: resuming it on another one would mix books."""
    ex = settings.exchange
    key = [settings.runtime.mode, ex.name, ex.base_url, ex.timeframe, feed.symbols]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def _open_ledger(path: Path, fingerprint: str, fresh: bool) -> Ledger:
    return open_owned(path, fingerprint, fresh, "market (exchange, symbols, timeframe or mode)")
