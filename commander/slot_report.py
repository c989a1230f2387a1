"""What the active slot tells the front-ends between steps: a snapshot of its cascade's figures,
metrics and last prices (``<commander dir>/snapshot-<slot>.json``, a ``SlotSnapshot`` read by
the status page and Telegram), and the alerts only the runtime can see: a risk limit vetoing
entries, a storm of LLM fallbacks."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from commander.alerts import Alerts
from commander.protocol import SlotSnapshot, StageFigures
from sorte import paths
from sorte.runtime.engine import StageFigures as RuntimeStageFigures
from sorte.runtime.metrics import LATENCY_BUCKETS

SNAPSHOT_EVERY_S = 1.0
STORM_WINDOW = 20  # steps
STORM_FALLBACKS = 10  # LLM answers replaced by the technical score within the window


def snapshot_path(commander_dir: Path, slot: str) -> Path:
    return paths.slot_snapshot(commander_dir, slot)


class SlotReporter:
    def __init__(self, commander_dir: Path, slot: str) -> None:
        self.path = snapshot_path(commander_dir, slot)
        self.alerts = Alerts(commander_dir)
        self.slot = slot
        self.last_close: dict[str, float] = {}
        self.vetoes: dict[str, int] = {}
        self.fallbacks: deque[int] = deque(maxlen=STORM_WINDOW)
        self.next_write = 0.0

    def reset(self, runtime: Any) -> None:
        """A new role: count vetoes from here, and write at once."""
        self.vetoes = dict(runtime.executor.risk.vetoes)
        self.fallbacks.clear()
        self.next_write = 0.0

    def after_step(self, runtime: Any, bars: list[Any], fallbacks: int, tick: int, deployment: str) -> None:
        for b in bars:
            self.last_close[b.symbol] = b.close
        self._risk(runtime.executor.risk.vetoes, tick)
        self.fallbacks.append(fallbacks)
        if sum(self.fallbacks) >= STORM_FALLBACKS:
            self.alerts.emit(
                "llm_fallback_storm",
                f"{sum(self.fallbacks)} LLM stage answers replaced by the technical score in {len(self.fallbacks)} "
                "steps: check the model server (sorte doctor)",
                slot=self.slot,
                tick=tick,
            )
            self.fallbacks.clear()
        now = time.monotonic()
        if now >= self.next_write:
            self.next_write = now + SNAPSHOT_EVERY_S
            self.write(runtime, tick, deployment)

    def _risk(self, vetoes: dict[str, int], tick: int) -> None:
        for rule, count in vetoes.items():
            new = count - self.vetoes.get(rule, 0)
            if new > 0:
                self.alerts.emit("risk_limit", f"risk limit {rule} vetoed new entries", rule=rule, tick=tick)
        self.vetoes = dict(vetoes)

    def write(self, runtime: Any, tick: int, deployment: str) -> None:
        snapshot = SlotSnapshot(
            at=time.time(),
            slot=self.slot,
            deployment=deployment,
            tick=tick,
            equity=runtime.broker.equity(),
            last_close=self.last_close,
            stages=[stage_figures(f) for f in runtime.stage_figures()],
            llm_cache_hit_rate=runtime.llm_cache_hit_rate(),
            metrics=runtime.metrics.render().decode(),
        )
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot.model_dump()))  # json's writer: a NaN equity stays NaN
        os.replace(tmp, self.path)  # readers never see half a file


def stage_figures(figures: RuntimeStageFigures) -> StageFigures:
    """A runtime's ``sorte.runtime.engine.StageFigures`` as the snapshot carries it."""
    *bounded, total = figures.latency_counts
    return StageFigures(
        stage=figures.stage,
        passes=figures.passes,
        discards=figures.discards,
        latency_buckets=list(zip(LATENCY_BUCKETS, bounded, strict=True)),
        latency_count=total,
    )
