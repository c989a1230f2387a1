"""The market-data service: one collector per source streams closed candles (WebSocket with
REST fallback and backfill) into a shared on-disk cache and out as sequence-numbered bars.

The public surface: ``Collector`` (``start``, ``run``, ``subscribe``, ``history``,
``health``, ``entries_allowed``, ``close``), ``CandleCache``, and the models ``FeedHealth``,
``SymbolHealth`` and ``MarketAlert``. The runtime does not import this package; whoever owns
the collector (the commander) hands its bars to the slots."""

from sorte.market.cache import CandleCache
from sorte.market.collector import Collector
from sorte.market.health import FeedHealth, MarketAlert, SymbolHealth, read_health, write_health

__all__ = ["CandleCache", "Collector", "FeedHealth", "MarketAlert", "SymbolHealth", "read_health", "write_health"]
