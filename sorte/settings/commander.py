"""The commander: blue/green slots, their windows and the shadow analysis that judges a candidate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class AnalysisSettings(BaseModel):
    """The commander's shadow analysis (``commander.analysis``): when a candidate is judged better."""

    min_bars: int = Field(30, ge=2, description="Fewer paired steps make every performance check inconclusive.")
    alpha: float = Field(0.01, gt=0, lt=1, description="Significance level of the one-sided paired tests.")
    latency_p50_ratio: float = Field(
        1.5, gt=0, description="The candidate's latency p50 may be at most this times the baseline's."
    )
    latency_p99_ratio: float = Field(
        2.0, gt=0, description="The candidate's latency p99 may be at most this times the baseline's."
    )
    latency_floor_ms: float = Field(
        2.0, ge=0, description="Latency differences below this many ms never fail (timer noise)."
    )
    latency_warmup_bars: int = Field(
        5, ge=0, description="First paired steps left out of the latency checks (a fresh process is cold)."
    )
    error_rate_delta: float = Field(
        0.05, ge=0, description="The candidate's error rate (errors per step) may exceed the baseline's by this."
    )
    pnl_margin: float = Field(
        0.0, ge=0, description="Tolerated mean per-step return shortfall, as a fraction of equity."
    )
    drawdown_delta: float = Field(
        0.01, ge=0, description="The candidate's max drawdown may exceed the baseline's by this (0.01 = 1 point)."
    )


class CommanderSettings(BaseModel):
    """Blue/green deployment of the runtime: windows are counted in bar steps."""

    model_config = {"extra": "forbid"}

    backend: Literal["local", "docker"] = Field("local", description="Where slots run: child processes or containers")
    shadow_bars: int = Field(60, ge=2, description="Steps a candidate runs in shadow before it is judged")
    watch_bars: int = Field(60, ge=2, description="Steps after a promotion during which a failure rolls back")
    warm_bars: int = Field(300, ge=0, description="Steps the replaced deployment stays warm for a fast rollback")
    batch_interval_s: float = Field(0.0, ge=0, le=3600, description="Pause between steps (0: as fast as bars come)")
    heartbeat_s: float = Field(0.5, gt=0, le=10, description="How often a slot says it is alive")
    heartbeat_timeout_s: float = Field(3.0, gt=0, le=120, description="Silence after which a slot counts as dead")
    start_timeout_s: float = Field(60.0, gt=0, le=600, description="Time a slot has to start and connect")
    step_timeout_s: float = Field(10.0, gt=0, le=600, description="Time a slot has to answer one step")
    restart_backoff_s: float = Field(0.5, gt=0, description="First wait before restarting a crashed active slot")
    max_restart_backoff_s: float = Field(30.0, gt=0, description="Longest wait between restarts")
    reconcile_tolerance: float = Field(
        0.0001, ge=0, le=0.1, description="Live account: relative difference of a balance that counts as a mismatch"
    )
    reconcile_retry_s: float = Field(
        30.0, gt=0, le=3600, description="Live account: how often a mismatch is checked again while trading is refused"
    )
    order_answer_window_s: float = Field(
        15.0,
        ge=6,
        le=120,
        description="Live account: how long after a send the exchange may still take an order the commander "
        "got no answer for (the exchange's recvWindow is set 5 s shorter); until then a lookup's 'no such "
        "order' does not count as never sent",
    )
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    @model_validator(mode="after")
    def _windows_hold_enough_bars(self) -> CommanderSettings:
        need = self.analysis.min_bars
        for name in ("shadow_bars", "watch_bars"):
            if getattr(self, name) < need:
                raise ValueError(f"commander.{name} must be at least analysis.min_bars ({need}), or it never passes")
        return self
