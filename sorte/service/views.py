"""What the service layer returns: plain pydantic models every front-end renders its own way."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from commander.deployment import Deployment, DeploymentEvent
from commander.lease import LeaseState


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


class ActionResult(BaseModel):
    ok: bool
    action: str
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)
