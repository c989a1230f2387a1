"""LLM cascade stages: prompt templates from ``strategies/prompts.py``, a market summary of
the bar, a validated verdict, and the deterministic technical-analysis score whenever the
model fails (timeout, error, invalid output) so the runtime keeps trading."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from sorte.errors import CascadeError
from sorte.indicators import rolling_std, rsi, sma
from sorte.literals import read_literals
from sorte.llm.client import LLM
from sorte.runtime.models import Ohlcv

PLACEHOLDERS = {
    "symbol",
    "side",
    "close",
    "ret_1",
    "ret_10",
    "ret_50",
    "rsi",
    "macd_hist",
    "bb_pct",
    "vol_ratio",
    "volatility",
    "previous",
}
SUMMARY_LOOKBACK = 60


class StageVerdict(BaseModel):
    score: float = Field(ge=0, le=1, description="How strongly this stage supports trading the side")
    side: Literal["BUY", "SELL", "HOLD"]
    reason: str = Field(max_length=160)


class FinalVerdict(StageVerdict):
    hold_seconds: float = Field(ge=0, le=3600, description="Minimum seconds the position stays open")


def read_prompts(path: Path) -> tuple[str, dict[str, str]]:
    """SYSTEM and PROMPTS from the prompts file's literals (no import), placeholders checked."""
    if not path.is_file():
        raise CascadeError(f"prompt templates {path} do not exist")
    found = read_literals(path, {"SYSTEM", "PROMPTS"}, CascadeError)
    system, prompts = found.get("SYSTEM", ""), found.get("PROMPTS")
    if not isinstance(system, str) or not isinstance(prompts, dict):
        raise CascadeError(f"{path.name}: needs SYSTEM (a string) and PROMPTS (a dict of strings)")
    for name, template in prompts.items():
        check_template(str(name), template)
    return system, prompts


def check_template(name: str, template: object) -> None:
    if not isinstance(template, str):
        raise CascadeError(f"prompt {name!r} must be a string")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise CascadeError(f"prompt {name!r} is not a valid template: {exc}") from None
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise CascadeError(
            f"prompt {name!r} uses unknown placeholder(s) {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}"
        )


def market_summary(bars: Ohlcv, symbol: str, side: int, previous: str = "") -> dict[str, str]:
    """Numbers a model can read, rounded so the same bar always gives the same prompt."""
    close = bars.close[-SUMMARY_LOOKBACK:]
    volume = bars.volume[-SUMMARY_LOOKBACK:]

    def ret(k: int) -> str:
        return f"{100 * (close[-1] / close[-1 - k] - 1):.2f}" if len(close) > k else "n/a"

    def last(x: np.ndarray, fmt: str) -> str:
        return "n/a" if len(x) == 0 or not np.isfinite(x[-1]) else format(float(x[-1]), fmt)

    macd = sma(close, 12) - sma(close, 26)
    mid, sd = sma(close, 20), rolling_std(close, 20)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_b = (close - (mid - 2 * sd)) / (4 * sd)
        vol_ratio = volume / sma(volume, 20)
        returns = np.diff(close) / close[:-1]
    return {
        "symbol": symbol,
        "side": {1: "BUY", -1: "SELL"}.get(side, "HOLD"),
        "close": f"{close[-1]:.6g}",
        "ret_1": ret(1),
        "ret_10": ret(10),
        "ret_50": ret(50),
        "rsi": last(rsi(close, 14), ".1f"),
        "macd_hist": last(macd - sma(macd, 9), ".4g"),
        "bb_pct": last(pct_b, ".2f"),
        "vol_ratio": last(vol_ratio, ".2f"),
        "volatility": f"{100 * float(np.std(returns[-20:])):.3f}" if len(returns) >= 2 else "n/a",
        "previous": previous or "none",
    }


def render(system: str, template: str, summary: dict[str, str]) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": template.format(**summary)}]


def verdict_score(verdict: StageVerdict, proposed: int) -> tuple[float, int]:
    """The stage's score for the proposed side and the side it names (0 for HOLD).

    A verdict for the other side scores ``1 - score`` for the proposed one."""
    named = {"BUY": 1, "SELL": -1}.get(verdict.side, 0)
    if proposed and named and named != proposed:
        return 1.0 - verdict.score, named
    return verdict.score, named


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
