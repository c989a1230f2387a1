"""LLM cascade stages: a model's validated verdict on the bar, and the deterministic
technical-analysis score whenever the model fails (timeout, error, invalid output) so the
runtime keeps trading.

The LLM layer is only a type here: a cascade without LLM stages never loads it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import structlog
from pydantic import BaseModel, Field

from sorte.errors import CascadeError
from sorte.runtime.cascade.definition import StageDef
from sorte.runtime.cascade.prompts import SUMMARY_LOOKBACK, market_summary, read_prompts, render
from sorte.runtime.cascade.stages import TECHNICAL_LOOKBACK, StageOutput, TechnicalStage
from sorte.runtime.values import Ohlcv

if TYPE_CHECKING:
    from sorte.llm.client import LLM

log = structlog.get_logger("sorte.cascade")


class StageVerdict(BaseModel):
    score: float = Field(ge=0, le=1, description="How strongly this stage supports trading the side")
    side: Literal["BUY", "SELL", "HOLD"]
    reason: str = Field(max_length=160)


class FinalVerdict(StageVerdict):
    hold_seconds: float = Field(ge=0, le=3600, description="Minimum seconds the position stays open")


def verdict_score(verdict: StageVerdict, proposed: int) -> tuple[float, int]:
    """The stage's score for the proposed side and the side it names (0 for HOLD).

    A verdict for the other side scores ``1 - score`` for the proposed one."""
    named = {"BUY": 1, "SELL": -1}.get(verdict.side, 0)
    if proposed and named and named != proposed:
        return 1.0 - verdict.score, named
    return verdict.score, named


class Judge(Protocol):
    """Asks a model about the last bar of ``bars``: (score, side, reason, hold seconds or None)."""

    lookback: int

    async def __call__(self, bars: Ohlcv, symbol: str, proposed: int, previous: str) -> tuple: ...


class LLMStage(TechnicalStage):
    """A language-model stage. ``judge`` asks the model about one bar; without a judge, or
    when the model times out, fails or answers invalidly, the stage answers with the
    deterministic technical-analysis score, says so in the log, and the runtime trades on."""

    kind = "llm"

    def __init__(self, definition: StageDef, judge: Judge | None = None) -> None:
        super().__init__(definition)
        self.role, self.prompt = definition.role, definition.prompt
        self.judge = judge
        self.fallbacks = 0
        self.answered = 0

    def lookback(self) -> int:
        return max(TECHNICAL_LOOKBACK, self.judge.lookback if self.judge else 0)

    def evaluate(self, bars: Ohlcv, proposed: np.ndarray) -> StageOutput:
        """Technical fallback for every bar (the judge is asked per bar by the cascade)."""
        out = super().evaluate(bars, proposed)
        if self.judge is None:
            self.fallbacks += 1
            log.debug("llm_stage", stage=self.name, fallback="technical-analysis", reason="no-llm-configured")
            out.reason = np.where(proposed != 0, "technical-analysis fallback (no LLM configured)", out.reason)
        return out

    async def judge_last(self, bars: Ohlcv, symbol: str, proposed: int, previous: str) -> tuple:
        """(score, side, reason, hold) of the last bar: the model's, or the fallback's."""
        assert self.judge is not None
        try:
            verdict = await self.judge(bars, symbol, proposed, previous)
        except Exception as exc:  # noqa: BLE001 - any model failure must leave the runtime trading
            self.fallbacks += 1
            reason = getattr(exc, "reason", None) or type(exc).__name__  # the LLM layer's cause: timeout...
            # a replay miss is listed in the replay error at the end, not one warning per bar
            emit = log.debug if reason == "not_cached" else log.warning
            emit(f"[LLM] stage={self.name} fallback=technical-analysis reason={reason}", error=str(exc))
            out = super().evaluate(bars, np.full(len(bars), proposed, np.int8))
            return float(out.score[-1]), 0, f"technical-analysis fallback ({reason})", None
        self.answered += 1
        return verdict


class LLMJudge:
    """Asks one role about the last bar of a window, with one stage's prompt template."""

    lookback = SUMMARY_LOOKBACK + 1

    def __init__(self, llm: LLM, stage: str, role: str, system: str, template: str, final: bool) -> None:
        self.llm, self.stage, self.role = llm, stage, role
        self.system, self.template = system, template
        self.schema: type[StageVerdict] = FinalVerdict if final else StageVerdict

    async def __call__(self, bars: Ohlcv, symbol: str, proposed: int, previous: str) -> tuple:
        summary = market_summary(bars, symbol, proposed, previous)
        answer = await self.llm.ask(
            self.role,
            render(self.system, self.template, summary),
            self.schema,
            stage=self.stage,
            symbol=symbol,
            bar_ts=float(bars.ts[-1]) if len(bars.ts) else None,
        )
        verdict = answer.value
        score, side = verdict_score(verdict, proposed)
        hold = verdict.hold_seconds if isinstance(verdict, FinalVerdict) else None
        return score, side, f"{verdict.reason} [{answer.backend}:{answer.model}]", hold


def build_judges(llm: LLM, prompts_file: Path, stages: list[tuple[str, str, str | None]]) -> dict[str, LLMJudge]:
    """A judge per (stage name, role, prompt name); the prompt name defaults to the stage's."""
    system, prompts = read_prompts(prompts_file)
    judges = {}
    for name, role, prompt in stages:
        key = prompt or name
        if key not in prompts:
            raise CascadeError(
                f"cascade stage {name!r}: no prompt {key!r} in {prompts_file.name} (has: {', '.join(sorted(prompts))})"
            )
        llm.settings.role(role)  # unknown roles fail here, before the runtime starts
        judges[name] = LLMJudge(llm, name, role, system, prompts[key], final=key == "final")
    return judges
