"""What the service layer returns: plain pydantic models every front-end renders its own way."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from commander.deployment import Deployment, DeploymentEvent
from commander.lease import LeaseState
from commander.reconcile import BalanceOff


class PositionView(BaseModel):
    symbol: str
    side: Literal["long", "short"]
    qty: float
    entry_price: float
    last_price: float | None = Field(None, description="The latest close the ledger saw for the symbol")
    unrealised_pnl: float | None = None
    strategy: str
    stop_price: float = 0.0
    take_price: float = 0.0
    opened_at: float = Field(description="Epoch seconds of the entry bar")


class TradeView(BaseModel):
    """One fill: an entry, or an exit with its realised PnL."""

    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    qty: float
    price: float
    fee: float
    purpose: str
    strategy: str
    realised_pnl: float
    at: float = Field(description="Epoch seconds of the bar it filled on")


class ProfitView(BaseModel):
    initial_cash: float
    equity: float
    cash: float
    return_pct: float
    realised_pnl: float
    fees: float
    closed_trades: int
    wins: int
    win_rate: float | None = Field(None, description="None before the first closed trade")
    max_drawdown: float = Field(description="Largest fall from an equity peak, as a fraction")
    steps: int


class EquityPoint(BaseModel):
    step: int
    at: float
    equity: float


class StageStats(BaseModel):
    """A cascade stage in the active deployment, from the slot's own metrics."""

    stage: str
    passes: float
    discards: float
    pass_rate: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class StrategyParam(BaseModel):
    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    doc: str = ""
    aliases: list[str] = Field(default_factory=list)


class StrategyView(BaseModel):
    name: str
    params: list[StrategyParam]


class DeploymentView(BaseModel):
    deployment: Deployment
    events: list[DeploymentEvent] = Field(default_factory=list)
    can_roll_back_to: bool = Field(False, description="A rollback with --to this id would be accepted")


class AlertView(BaseModel):
    at: float
    kind: str
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


class LessonView(BaseModel):
    id: str
    strategy: str
    request: str
    rule: str
    outcome: str
    verdict: str
    plan_summary: str = ""
    metric_deltas: dict[str, float] = Field(default_factory=dict)
    updated_at: str
    times_seen: int = 1
    score: float | None = Field(None, description="Similarity to the query (search only)")


class Health(BaseModel):
    """Liveness is the process answering; readiness is what this reports."""

    ready: bool
    checks: dict[str, str] = Field(description="check -> 'ok' or what is wrong")


class SymbolFeedView(BaseModel):
    symbol: str
    last_seq: int | None = Field(None, description="Sequence number of the last bar")
    last_bar_ts: float | None = Field(None, description="Open time (epoch s) of the last bar")
    last_bar_age_s: float | None = Field(None, description="Seconds since the last bar closed, advanced to now")
    lag_s: float | None = Field(None, description="Close of the last bar to its emission, in seconds")
    stale: bool = False


class FeedView(BaseModel):
    """The commander's market feed as its last health snapshot tells it, ages advanced to now."""

    source: str = Field(description="The exchange id, or 'replay'")
    timeframe: str
    mode: str = Field(description="starting, websocket, polling, replay or stopped")
    symbols: list[SymbolFeedView]
    oldest_bar_age_s: float | None = Field(None, description="The largest last-bar age of any symbol, now")
    newest_seq: int | None = Field(None, description="The highest last bar sequence number (a replay has no ages)")
    lag_s: float | None = Field(None, description="Largest lag of any symbol's last bar")
    clock_offset_s: float = Field(0.0, description="Exchange clock minus local clock")
    reconnects: int = 0
    poll_failures: int = 0
    backfilled_candles: int = 0
    streamed_candles: int = 0
    gaps: int = 0
    stale_symbols: list[str] = Field(default_factory=list)
    entries_allowed: bool = True
    market_open: bool = Field(True, description="False outside the venue's sessions: no bar is due, ages grow")
    opens_at: float | None = Field(None, description="When the next session opens (epoch s), while closed")
    at: float = Field(description="Local wall time (epoch s) of the snapshot")
    snapshot_age_s: float = Field(description="Seconds since the snapshot was written")
    commander_running: bool
    current: bool = Field(description="False when the commander is not running or the snapshot is old")
    state: Literal["live", "stale", "old"] = Field(
        description="live: current, no symbol stale; stale: some symbol is (no new entries); old: not current"
    )
    summary: str = Field(description="One line: what the page, the CLI and the bot show first")


class AccountView(BaseModel):
    """A live account's last reconciliation with the exchange (the commander's order gateway)."""

    ok: bool = Field(description="The account matched the ledger; False: trading is refused")
    epoch: int = Field(description="The lease epoch it was reconciled for")
    differences: list[str] = Field(default_factory=list, description="What differs, in words")
    balances: list[BalanceOff] = Field(
        default_factory=list, description="The balances that differ, as numbers: what `sorte reconcile --accept` takes"
    )
    open_orders: int
    at: float = Field(description="Local wall time (epoch s) of the reconciliation")
    age_s: float
    summary: str = Field(description="One line: what the page, the CLI and the bot show first")


class Overview(BaseModel):
    commander_running: bool
    health: Literal["trading", "paused", "degraded", "stopped"]
    paused: bool
    lease: LeaseState
    active: Deployment | None
    active_slot: str | None
    slots: dict[str, Deployment | None]
    profit: ProfitView | None
    positions: list[PositionView]
    stages: list[StageStats]
    llm_cache_hit_rate: float | None = Field(None, description="None when the active cascade has no LLM stage")
    runs_waiting: list[str] = Field(default_factory=list, description="Agent runs waiting for approval")
    alerts: list[AlertView] = Field(default_factory=list)
    feed: FeedView | None = Field(None, description="The market feed; None before a commander wrote its health")
    account: AccountView | None = Field(None, description="A live account's reconciliation; None on paper")


class ActionResult(BaseModel):
    ok: bool
    action: str
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


def seconds_text(seconds: float | None) -> str:
    """A duration for people: '42 s', '7 min', '3.5 h', '2.0 d'; '-' for none."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
