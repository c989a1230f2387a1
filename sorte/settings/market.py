"""The market-data service (``sorte.market``): one collector per source, its cache and stream."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class MarketSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default

    stale_intervals: int = Field(
        3, ge=1, le=1000, description="A symbol with no new closed candle for this many intervals is stale: no entries"
    )
    prefetch_bars: int = Field(
        300, ge=0, le=100_000, description="Closed candles per symbol fetched into the cache at start (warm-up)"
    )
    websocket: bool = Field(True, description="Stream candles over the exchange's WebSocket where ccxt offers it")
    poll_interval_s: float = Field(
        5.0, gt=0, le=3600, description="REST polling period; also how long a due candle may be late on the WebSocket"
    )
    grace_s: float = Field(2.0, ge=0, le=600, description="A candle counts as closed this long after its end")
    reconnect_backoff_s: float = Field(1.0, gt=0, le=600, description="First wait before reconnecting after a failure")
    reconnect_backoff_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between reconnects")
    websocket_failures: int = Field(
        3, ge=1, le=100, description="Failed WebSocket connections in a row before falling back to REST polling"
    )
    websocket_retry_s: float = Field(
        300.0, gt=0, le=86_400, description="While polling as a fallback, try the WebSocket again this often"
    )
    clock_sync_s: float = Field(600.0, gt=0, le=86_400, description="How often the exchange clock offset is measured")
    request_timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one REST call to the exchange")
    request_attempts: int = Field(3, ge=1, le=10, description="Attempts of one REST call before it counts as failed")

    @model_validator(mode="after")
    def _backoff_order(self) -> MarketSettings:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ValueError("market.reconnect_backoff_max_s must be at least market.reconnect_backoff_s")
        return self
