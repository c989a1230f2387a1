"""The market-data service (``sorte.market``): one collector per source, its cache and stream."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from sorte.settings.b3 import B3Settings

SortKey = Literal["quote_volume", "volatility", "change"]


def _default_sort_keys() -> dict[SortKey, float]:
    return {"quote_volume": 0.7, "volatility": 0.3}


class PairsSettings(BaseModel):
    """The pair selector (``sorte.market.pairs``): which of an exchange's symbols to trade, ranked
    by 24 h quote volume and volatility after filters, as freqtrade's pairlists do."""

    model_config = {"extra": "forbid"}

    enabled: bool = Field(False, description="The commander trades the selected pairs instead of runtime.symbols")
    quote: str = Field("USDT", min_length=1, max_length=20, description="Only markets quoted in this currency")
    number_assets: int = Field(20, ge=1, le=1000, description="How many pairs are selected, best first")
    min_quote_volume: float = Field(
        1_000_000.0, ge=0, description="Minimum 24 h volume in the quote currency (USDT by default)"
    )
    min_price: float = Field(0.0, ge=0, description="Minimum last price (0: any positive price)")
    max_spread_pct: float | None = Field(
        0.5, gt=0, le=100, description="Maximum bid/ask spread, % of the ask (None: no spread filter)"
    )
    min_history_bars: int = Field(
        0, ge=0, le=100_000, description="Minimum candles of exchange.timeframe known for a pair (0: no check)"
    )
    volatility_lookback_bars: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Volatility as the high/low range of the last N cached candles (0: the ticker's 24 h range)",
    )
    min_volatility_pct: float = Field(1.0, ge=0, description="Minimum high/low range, % of the low")
    max_volatility_pct: float | None = Field(50.0, gt=0, description="Maximum high/low range, % of the low")
    blacklist: list[str] = Field(
        default_factory=lambda: ["USDC/*", "FDUSD/*", "TUSD/*", "USDP/*", "DAI/*", "BUSD/*", "EUR/*", "AEUR/*"],
        description="Symbols never selected: glob patterns such as 'BNB/*' or '*DOWN/*' (case-insensitive)",
    )
    refresh_s: float = Field(1800.0, ge=10, le=7 * 86_400, description="How often the selection is refreshed")
    sort_keys: dict[SortKey, float] = Field(
        default_factory=_default_sort_keys,
        description="Weights of the ranks that make the score: quote_volume, volatility, change (|24 h change|)",
    )

    @field_validator("quote")
    @classmethod
    def _quote_upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("sort_keys")
    @classmethod
    def _some_weight(cls, value: dict[SortKey, float]) -> dict[SortKey, float]:
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("market.pairs.sort_keys needs weights >= 0, at least one > 0 (e.g. {quote_volume: 1})")
        return value

    @model_validator(mode="after")
    def _volatility_order(self) -> PairsSettings:
        if self.max_volatility_pct is not None and self.max_volatility_pct < self.min_volatility_pct:
            raise ValueError("market.pairs.max_volatility_pct must be at least market.pairs.min_volatility_pct")
        return self


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
    batch_settle_s: float = Field(
        0.1, ge=0, le=60, description="After a candle's first bar, how long the others of its time are waited for"
    )
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
    pairs: PairsSettings = Field(default_factory=PairsSettings)
    b3: B3Settings = Field(default_factory=B3Settings, description="B3 through brapi (runtime.feed=b3)")

    @model_validator(mode="after")
    def _backoff_order(self) -> MarketSettings:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ValueError("market.reconnect_backoff_max_s must be at least market.reconnect_backoff_s")
        return self
