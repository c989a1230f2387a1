"""The decision cascade: ordered stages that score a bar and discard it early.

``definition`` reads and validates ``strategies/cascade.py``; ``stages`` and ``llm_stages``
score a bar (``prompts`` feeds the LLM stages); ``engine`` runs the stages in order,
counting each one in ``stats``; ``build`` makes a cascade from a definition.
"""

from sorte.runtime.cascade.build import build_cascade, load_cascade, single_strategy_cascade
from sorte.runtime.cascade.definition import CascadeDefinition, StageDef, parse_cascade, read_cascade
from sorte.runtime.cascade.engine import BatchSignals, Cascade
from sorte.runtime.cascade.llm_stages import Judge, LLMStage
from sorte.runtime.cascade.stages import (
    TECHNICAL_LOOKBACK,
    Stage,
    StageOutput,
    StrategyStage,
    TechnicalStage,
    technical_bullishness,
)
from sorte.runtime.cascade.stats import StageStats

__all__ = [
    "TECHNICAL_LOOKBACK",
    "BatchSignals",
    "Cascade",
    "CascadeDefinition",
    "Judge",
    "LLMStage",
    "Stage",
    "StageDef",
    "StageOutput",
    "StageStats",
    "StrategyStage",
    "TechnicalStage",
    "build_cascade",
    "load_cascade",
    "parse_cascade",
    "read_cascade",
    "single_strategy_cascade",
    "technical_bullishness",
]
