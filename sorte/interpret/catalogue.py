"""What a request may change, read from the strategy files and the cascade without importing
them: strategies with their declared parameters, the cascade's stages, MIN_CONFIDENCE."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sorte import paths
from sorte.errors import SorteError
from sorte.runtime.cascade import read_cascade
from sorte.runtime.strategy import (
    available_strategies,
    read_aliases,
    read_description,
    read_param_specs,
)

Value = bool | int | float
#: How traders name MIN_CONFIDENCE (it is one literal, with no dict to hold aliases).
MIN_CONFIDENCE_ALIASES = (
    "confiança mínima",
    "confiança",
    "confiança do sinal",
    "limiar de confiança",
    "min confidence",
    "minimum confidence",
    "min conf",
    "confidence",
    "confidence threshold",
)


#: Names traders use for the risk parameters every strategy declares (the template's too), so
#: that each module need not repeat them; a module's own "aliases" come first.
SHARED_ALIASES: dict[str, tuple[str, ...]] = {
    "stop_loss": ("stop", "stop loss", "stop de perda", "perda máxima", "limite de perda", "sl", "stoploss",
                  "loss limit"),
    "take_profit": ("take profit", "take", "stop gain", "gain", "alvo", "alvo de lucro", "realização de lucro",
                    "tp", "takeprofit", "profit target", "target"),
    "min_hold_s": ("tempo mínimo", "tempo mínimo na posição", "permanência mínima", "min hold", "minimum hold",
                   "hold time", "holding time"),
}  # fmt: skip


class ParamEntry(BaseModel):
    name: str
    type: Literal["int", "float", "bool"]
    value: Value  # the declared default: the value the strategy trades with
    min: float | None = None
    max: float | None = None
    doc: str = ""
    aliases: list[str] = Field(default_factory=list)

    @property
    def fraction(self) -> bool:
        """A share of the price (stop loss, take profit): "3%" means 0.03."""
        return self.type == "float" and "fraction" in self.doc.lower()

    def bounds(self) -> str:
        return f"[{_fmt(self.min)}, {_fmt(self.max)}]"


class StrategyEntry(BaseModel):
    name: str
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    params: dict[str, ParamEntry]


class StageEntry(BaseModel):
    name: str
    kind: str
    position: int
    threshold: float
    weight: float
    enabled: bool
    strategy: str | None = None
    aliases: list[str] = Field(default_factory=list)


class Catalogue(BaseModel):
    """One read-only view of the closed world a request may change."""

    strategies: dict[str, StrategyEntry]
    stages: list[StageEntry]
    min_confidence: float
    problems: list[str] = Field(default_factory=list)  # files that could not be read, named

    def stage(self, name: str) -> StageEntry | None:
        return next((s for s in self.stages if s.name == name), None)

    def param(self, strategy: str, name: str) -> ParamEntry | None:
        entry = self.strategies.get(strategy)
        return entry.params.get(name) if entry else None

    def describe(self, strategy: str) -> str:
        """One strategy's settings in a few lines (explain answers, model prompts)."""
        entry = self.strategies[strategy]
        lines = [f"{entry.name}: {entry.description}"]
        lines += [f"  {p.name} = {_fmt(p.value)} {p.bounds()}: {p.doc}" for p in entry.params.values()]
        return "\n".join(lines)

    def describe_cascade(self) -> str:
        lines = [f"MIN_CONFIDENCE = {_fmt(self.min_confidence)}"]
        lines += [
            f"  {s.position}. {s.name} ({s.kind}) threshold {_fmt(s.threshold)} weight {_fmt(s.weight)} "
            f"{'on' if s.enabled else 'off'}"
            for s in self.stages
        ]
        return "\n".join(lines)


def build_catalogue(tree: Path) -> Catalogue:
    """The catalogue of one checkout (the base repository, or a run's worktree)."""
    folder = paths.strategies_in(tree)
    strategies: dict[str, StrategyEntry] = {}
    problems: list[str] = []
    for name in available_strategies(folder):
        path = folder / f"{name}.py"
        try:
            specs = read_param_specs(path)
            params = {
                p: ParamEntry(
                    name=p,
                    type=s.type,
                    value=s.default,
                    min=s.min,
                    max=s.max,
                    doc=s.doc,
                    aliases=[*s.aliases, *(a for a in SHARED_ALIASES.get(p, ()) if a not in s.aliases)],
                )
                for p, s in specs.items()
            }
            strategies[name] = StrategyEntry(
                name=name, description=read_description(path), aliases=read_aliases(path), params=params
            )
        except SorteError as exc:
            problems.append(str(exc))
    stages: list[StageEntry] = []
    min_confidence = 0.75
    try:
        cascade = read_cascade(paths.cascade_file(tree))
        min_confidence = cascade.min_confidence
        stages = [
            StageEntry(
                name=s.name,
                kind=s.kind,
                position=i,
                threshold=s.threshold,
                weight=s.weight,
                enabled=s.enabled,
                strategy=s.strategy,
                aliases=s.aliases,
            )
            for i, s in enumerate(cascade.stages)
        ]
    except SorteError as exc:
        problems.append(str(exc))
    return Catalogue(strategies=strategies, stages=stages, min_confidence=min_confidence, problems=problems)


def _fmt(value: float | bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)
