"""The schema of a cascade definition (``strategies/cascade.py``): its stages, their
thresholds and weights, and MIN_CONFIDENCE; read from the file's literals and validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from sorte.errors import CascadeError
from sorte.literals import read_literals
from sorte.runtime.strategy import Alias


class StageDef(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["strategy", "technical", "llm"]
    threshold: float = Field(ge=0, le=1)
    weight: float = Field(1.0, gt=0, le=100)
    enabled: bool = True
    strategy: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    role: str | None = None
    prompt: str | None = None
    aliases: list[Alias] = Field(default_factory=list, max_length=24)

    @model_validator(mode="after")
    def _kind_fields(self) -> StageDef:
        if self.kind == "strategy" and not self.strategy:
            raise ValueError("a strategy stage needs a 'strategy' name")
        if self.kind == "llm" and not self.role:
            raise ValueError("an llm stage needs a 'role'")
        return self


class CascadeDefinition(BaseModel):
    model_config = {"extra": "forbid"}

    min_confidence: float = Field(0.75, ge=0, le=1)
    stages: list[StageDef]

    @model_validator(mode="after")
    def _consistent(self) -> CascadeDefinition:
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate stage names: {', '.join(dupes)}")
        enabled = [s for s in self.stages if s.enabled]
        if not enabled:
            raise ValueError("no stage is enabled")
        if not any(s.kind == "strategy" for s in enabled):
            raise ValueError("no enabled strategy stage: nothing can propose a side")
        return self

    @property
    def enabled_stages(self) -> list[StageDef]:
        return [s for s in self.stages if s.enabled]


def read_cascade(path: Path) -> CascadeDefinition:
    """Read MIN_CONFIDENCE and STAGES from the cascade file's literals, without importing it."""
    if not path.is_file():
        raise CascadeError(f"cascade definition {path} does not exist")
    found = read_literals(path, {"MIN_CONFIDENCE", "STAGES"}, CascadeError)
    if "STAGES" not in found:
        raise CascadeError(f"{path.name}: no top-level STAGES list")
    return parse_cascade(
        {"min_confidence": found.get("MIN_CONFIDENCE", 0.75), "stages": found["STAGES"]},
        path.name,
    )


def parse_cascade(raw: Any, source: str = "cascade") -> CascadeDefinition:
    try:
        return CascadeDefinition.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "definition"
        raise CascadeError(f"invalid cascade in {source}: {where}: {err['msg']}") from None
