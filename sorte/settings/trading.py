"""Trading: the runtime's feed and sandbox, the paper broker, the exchange and the hard risk limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class RiskSettings(BaseModel):
    """Hard limits: they veto orders whatever the cascade says."""

    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default

    position_fraction: float = Field(0.2, gt=0, le=1, description="Equity per new position")
    max_position_fraction: float = Field(0.5, gt=0, le=1, description="Cap per symbol")
    max_loss_per_trade: float = Field(0.02, gt=0, le=1, description="Equity lost if the stop loss is hit, at most")
    max_gross_exposure: float = Field(1.0, gt=0, le=10, description="Sum |notional| / equity")
    max_open_positions: int = Field(10, ge=1)
    max_drawdown: float = Field(0.25, gt=0, le=1, description="No new entries once equity is this far below its peak")
    max_correlation: float = Field(0.95, gt=0, le=1, description="Veto a same-side entry this correlated to a held one")
    correlation_window: int = Field(50, ge=5, description="Bars of returns for correlation")


class BrokerSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    initial_cash: float = Field(10_000.0, gt=0)
    fee_bps: float = Field(10.0, ge=0, le=1000)
    slippage_bps: float = Field(5.0, ge=0, le=1000)
    allow_short: bool = False
    order_type: Literal["market", "limit"] = Field("market", description="Entry orders; exits are market")
    limit_offset_bps: float = Field(5.0, ge=0, le=1000, description="Limit entries this much better than price")
    limit_ttl_bars: int = Field(5, ge=1, description="A limit entry not filled after this many bars expires")


class ExchangeSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    name: str = "binance"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    base_url: str | None = Field(None, description="Override the exchange API URL (tests)")
    ws_url: str | None = Field(None, description="Override the exchange WebSocket URL (tests)")
    timeframe: str = "1m"


class RuntimeSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    mode: Literal["paper", "live"] = "paper"
    live_trading: bool = Field(False, description="Must be true, with credentials, before any real order is sent")
    feed: Literal["replay", "ccxt", "b3"] = Field(
        "replay", description="replay (files or the demo market), ccxt (a crypto exchange) or b3 (brapi)"
    )
    data: list[Path] = Field(default_factory=list, description="Replay files (CSV/Parquet); empty = bundled demo")
    symbols: list[str] = Field(default_factory=list, description="Symbols for the ccxt feed")
    speed: float = Field(0.0, ge=0, description="Replay speed: 0 = as fast as possible")
    batch_interval_s: float | None = Field(None, ge=0, le=3600, description="None = 5 s for live feeds, 0 for replay")
    demo_bars: int = Field(600, ge=50, le=100_000)
    demo_symbols: int = Field(4, ge=1, le=100)
    demo_seed: int = 7
    strategy_sandbox: Literal["local", "docker"] = Field(
        "local",
        description="Where strategy code runs: a confined local worker process (namespaces as root) or a container",
    )
    strategy_memory_mb: int = Field(1024, ge=128, le=65536, description="Memory limit of the strategy worker")
    strategy_timeout_s: float = Field(30.0, gt=0, le=600, description="Longest answer of the strategy worker")
    strategy_worker_socket: Path | None = Field(
        None, description="Set by the commander for a containerised slot: the worker it confined in a container"
    )
