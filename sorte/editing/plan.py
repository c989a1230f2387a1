"""Typed edit plans: what the agent may ask the editor to change, as JSON.

The agent's language model is shown this schema (``EditPlan.model_json_schema()``) and
answers with one plan; the editor (``sorte.editing.apply``) validates it against the real
files and applies it with LibCST, or refuses it naming the failing operation.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sorte.errors import SorteError

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME = r"^[a-z][a-z0-9_]*$"
ALLOWED_IMPORTS = ("numpy", "pandas", "math", "statistics", "sorte.indicators")

FileField = Field(
    description="Repo-relative path of a strategy file, e.g. 'strategies/momentum.py'. Only files under "
    "'strategies/' can be edited.",
    max_length=200,
)


class EditRefused(SorteError):
    """A plan (or one of its operations) was refused; nothing was written."""

    def __init__(self, op_index: int | None, op_kind: str | None, reason: str) -> None:
        self.op_index, self.op_kind, self.reason = op_index, op_kind, reason
        where = "plan" if op_index is None else f"operation {op_index} ({op_kind})"
        super().__init__(f"{where} refused: {reason}")


def _require_op(schema: dict) -> None:
    # "op" has a default for Python callers, but JSON must carry it: the union dispatches on it.
    required = schema.setdefault("required", [])
    if "op" not in required:
        required.insert(0, "op")


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_require_op)


class SetParam(_Op):
    """Set the default value of a declared strategy parameter (an entry of the module's PARAMS)."""

    op: Literal["set_param"] = "set_param"
    strategy: str = Field(pattern=NAME, description="Strategy module name, e.g. 'momentum'.")
    name: str = Field(pattern=IDENT, description="Declared parameter name, e.g. 'stop_loss'.")
    value: bool | int | float = Field(description="New default; must match the declared type and bounds.")


class SetStage(_Op):
    """Change one stage of the cascade (strategies/cascade.py STAGES). Fields left out stay as they are."""

    op: Literal["set_stage"] = "set_stage"
    stage: str = Field(pattern=NAME, description="The stage's 'name', e.g. 'technical'.")
    threshold: float | None = Field(None, ge=0, le=1, description="Discard threshold in [0, 1].")
    enabled: bool | None = Field(None, description="Turn the stage on or off.")
    weight: float | None = Field(None, gt=0, le=100, description="Weight in the final weighted mean.")
    position: int | None = Field(None, ge=0, description="New 0-based position of the stage in the cascade order.")

    @model_validator(mode="after")
    def _something_to_change(self) -> SetStage:
        if all(v is None for v in (self.threshold, self.enabled, self.weight, self.position)):
            raise ValueError("give at least one of threshold, enabled, weight, position")
        return self


class SetMinConfidence(_Op):
    """Set MIN_CONFIDENCE, the weighted-mean score a decision needs to trade."""

    op: Literal["set_min_confidence"] = "set_min_confidence"
    value: float = Field(ge=0, le=1, description="New minimum confidence in [0, 1].")


class ReplaceBody(_Op):
    """Replace the body of a top-level function or of a method (``Class.method``) of a strategy file."""

    op: Literal["replace_body"] = "replace_body"
    file: str = FileField
    function: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
        description="Function name, or 'Class.method'.",
    )
    body: str = Field(
        max_length=20_000,
        description="New body: Python statements only, without the 'def' line (any common indentation is removed).",
    )
    signature: str | None = Field(
        None,
        max_length=500,
        description="New parameter list with parentheses and optional return annotation, e.g. '(f, p) -> tuple'. "
        "Leave out to keep the current signature.",
    )


class AddFunction(_Op):
    """Add a new top-level function at the end of a strategy file."""

    op: Literal["add_function"] = "add_function"
    file: str = FileField
    source: str = Field(max_length=20_000, description="The complete function definition ('def name(...): ...').")


class AddStrategy(_Op):
    """Create strategies/<name>.py from the strategy template (strategies/_template.py)."""

    op: Literal["add_strategy"] = "add_strategy"
    name: str = Field(pattern=NAME, max_length=60, description="New module name, e.g. 'rsi_trend'.")
    description: str | None = Field(
        None, max_length=300, description="One-line module docstring saying what the strategy does."
    )
    params: dict[str, bool | int | float] = Field(
        default_factory=dict, description="Defaults of the template's declared parameters to change."
    )
    aliases: list[Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\n]+$")]] = Field(
        default_factory=list,
        max_length=24,
        description="How traders call the new strategy, in Portuguese and English (e.g. 'rompimento de topo').",
    )


class RemoveFunction(_Op):
    """Remove a top-level function that nothing in strategies/ references."""

    op: Literal["remove_function"] = "remove_function"
    file: str = FileField
    name: str = Field(pattern=IDENT, description="Function name.")


class AddImport(_Op):
    """Add an import to a strategy file: 'import module [as alias]' or 'from module import names'."""

    op: Literal["add_import"] = "add_import"
    file: str = FileField
    module: str = Field(description=f"One of: {', '.join(ALLOWED_IMPORTS)}.", max_length=100)
    names: list[str] = Field(
        default_factory=list, description="Names to import from the module; empty for a plain 'import module'."
    )
    alias: str | None = Field(None, pattern=IDENT, description="'as' alias of a plain import, e.g. 'np'.")


class AddTest(_Op):
    """Add a NEW pytest file under tests/strategies/ (existing test files can never be changed)."""

    op: Literal["add_test"] = "add_test"
    path: str = Field(max_length=200, description="Repo-relative path, e.g. 'tests/strategies/test_momentum_stop.py'.")
    source: str = Field(max_length=50_000, description="The whole test module.")


class EditPrompt(_Op):
    """Replace the template of one LLM stage prompt (strategies/prompts.py PROMPTS)."""

    op: Literal["edit_prompt"] = "edit_prompt"
    prompt: str = Field(pattern=NAME, description="Key of PROMPTS, e.g. 'technical'.")
    template: str = Field(
        max_length=4000,
        description="New template; only the documented {placeholders}; literal braces doubled as '{{' '}}'.",
    )


Op = Annotated[
    SetParam
    | SetStage
    | SetMinConfidence
    | ReplaceBody
    | AddFunction
    | AddStrategy
    | RemoveFunction
    | AddImport
    | AddTest
    | EditPrompt,
    Field(discriminator="op"),
]


class EditPlan(BaseModel):
    """An ordered list of typed edits to the strategy code, applied all together or not at all."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=500, description="One sentence saying what the plan changes and why.")
    ops: list[Op] = Field(min_length=1, max_length=50, description="Operations, applied in order.")


def load_plan(text: str | bytes) -> EditPlan:
    """Parse a plan from JSON, turning a validation error into an EditRefused that names the operation."""
    try:
        return EditPlan.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        where = ".".join(str(p) for p in loc) or "plan"
        if len(loc) >= 2 and loc[0] == "ops" and isinstance(loc[1], int):
            kind = str(loc[2]) if len(loc) > 2 else None
            raise EditRefused(loc[1], kind, f"{where}: {err['msg']}") from None
        raise EditRefused(None, None, f"{where}: {err['msg']}") from None
