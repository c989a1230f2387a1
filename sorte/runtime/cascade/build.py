"""Building a cascade from its definition: a stage object per enabled stage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sorte.errors import CascadeError, StrategyError
from sorte.runtime.cascade.definition import CascadeDefinition, parse_cascade, read_cascade
from sorte.runtime.cascade.engine import Cascade
from sorte.runtime.cascade.llm_stages import LLMJudge, LLMStage, build_judges
from sorte.runtime.cascade.stages import Stage, StrategyStage, TechnicalStage
from sorte.runtime.strategy import Strategy, load_strategy
from sorte.runtime.strategy_host import RemoteStrategy, StrategyHost

if TYPE_CHECKING:
    from sorte.llm.client import LLM


def build_cascade(
    definition: CascadeDefinition,
    strategies_dir: Path,
    llm: LLM | None = None,
    host: StrategyHost | None = None,
    owns_host: bool = False,
) -> Cascade:
    """Stages from a definition. With an LLM client (``sorte.llm.client.LLM``) the llm stages
    ask their model; without one they answer with the technical-analysis fallback.

    With a ``host`` (``sorte.runtime.strategy_host.StrategyHost`` over ``strategies_dir``) the
    strategy stages' code runs in its confined worker; without one it is imported into this
    process, which only trusted code (a sandbox's own process, the test suite) may do."""
    judges: dict[str, LLMJudge] = {}
    llm_stages = [(s.name, s.role or "", s.prompt) for s in definition.enabled_stages if s.kind == "llm"]
    if llm is not None and llm_stages:
        judges = build_judges(llm, strategies_dir / "prompts.py", llm_stages)
    stages: list[Stage] = []
    strategy: Strategy | RemoteStrategy
    for sd in definition.enabled_stages:
        if sd.kind == "strategy":
            try:
                if host is not None:
                    strategy = host.strategy(sd.strategy or "", sd.params)
                else:
                    strategy = load_strategy(sd.strategy or "", strategies_dir, sd.params)
            except StrategyError as exc:
                raise CascadeError(f"cascade stage {sd.name!r}: {exc}") from None
            stages.append(StrategyStage(sd, strategy))
        elif sd.kind == "technical":
            stages.append(TechnicalStage(sd))
        else:
            stages.append(LLMStage(sd, judges.get(sd.name)))
    return Cascade(definition, stages, host, owns_host)


def single_strategy_cascade(
    name: str,
    strategies_dir: Path,
    params: dict[str, Any] | None = None,
    min_confidence: float = 0.0,
    threshold: float = 0.0,
    host: StrategyHost | None = None,
) -> Cascade:
    """A one-stage cascade around one strategy, used by ``sorte backtest STRATEGY``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise StrategyError(f"invalid strategy name {name!r}")
    definition = parse_cascade(
        {
            "min_confidence": min_confidence,
            "stages": [
                {"name": name, "kind": "strategy", "strategy": name, "threshold": threshold, "params": params or {}}
            ],
        },
        f"strategy {name}",
    )
    return build_cascade(definition, strategies_dir, host=host)


def load_cascade(strategies_dir: Path, llm: LLM | None = None, host: StrategyHost | None = None) -> Cascade:
    return build_cascade(read_cascade(strategies_dir / "cascade.py"), strategies_dir, llm, host)
