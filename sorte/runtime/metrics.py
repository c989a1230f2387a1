"""Prometheus metrics of the trading runtime, on a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1.0, 10.0)


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.bars = Counter("sorte_bars_total", "Bars processed", ["symbol"], registry=r)
        self.decisions = Counter("sorte_decisions_total", "Trading decisions", ["symbol", "side"], registry=r)
        self.discards = Counter("sorte_stage_discards_total", "Bars discarded per stage", ["stage"], registry=r)
        self.stage_passes = Counter("sorte_stage_passes_total", "Bars passed per stage", ["stage"], registry=r)
        self.stage_latency = Histogram(
            "sorte_stage_latency_seconds", "Stage evaluation time", ["stage"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.decision_latency = Histogram(
            "sorte_decision_latency_seconds", "Cascade time per symbol per bar", buckets=LATENCY_BUCKETS, registry=r
        )
        self.orders = Counter("sorte_orders_total", "Orders submitted", ["purpose"], registry=r)
        self.fills = Counter("sorte_fills_total", "Fills", ["purpose"], registry=r)
        self.vetoes = Counter("sorte_risk_vetoes_total", "Entries vetoed by risk limits", ["rule"], registry=r)
        self.equity = Gauge("sorte_equity", "Account equity", registry=r)
        self.realized_pnl = Gauge("sorte_realized_pnl", "Realised PnL net of fees", registry=r)
        self.exposure = Gauge("sorte_gross_exposure_ratio", "Gross exposure / equity", registry=r)
        self.open_positions = Gauge("sorte_open_positions", "Open positions", registry=r)
        self.batch_interval = Gauge("sorte_batch_interval_seconds", "Current batch interval", registry=r)
        self.llm_stage_fallbacks = Gauge(
            "sorte_llm_stage_fallbacks", "LLM stage answers replaced by the technical score", ["stage"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
