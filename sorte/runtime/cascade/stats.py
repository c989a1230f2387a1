"""How many bars each stage saw and let through, and the time it took."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StageStats:
    evaluated: int = 0
    passed: int = 0
    seconds: float = 0.0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.evaluated if self.evaluated else 0.0

    @property
    def mean_latency_s(self) -> float:
        return self.seconds / self.evaluated if self.evaluated else 0.0
