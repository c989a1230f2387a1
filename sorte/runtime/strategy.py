"""Strategy modules: declared parameters read without importing, then loaded by path.

A strategy module in ``strategies/`` declares ``PARAMS``, a dict literal of
``name -> {"type", "default", "min", "max", "doc", "aliases"}`` that code (and later the LibCST
editor) can read and change in place, and three pure functions:

- ``lookback(p) -> int``: bars of history a decision needs;
- ``features(bars, p) -> dict[str, ndarray]``: causal indicators over an Ohlcv window;
- ``decide(f, p) -> (score, side, reason)``: arrays over the same bars, score in [0, 1],
  side in {-1, 0, +1}, reason a short text per bar.

The functions are vectorised: the backtester calls them once over a whole history, the
live runtime over a trailing window and keeps the last bar. Indicators are window-exact
(see ``sorte.indicators``), so both give identical decisions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator

from sorte.errors import StrategyError
from sorte.literals import read_literals
from sorte.runtime.values import Params

REQUIRED_FUNCTIONS = ("lookback", "features", "decide")
#: A name traders use for a parameter, stage or strategy ("stop", "média rápida", "fast SMA").
Alias = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\n]+$")]
NOT_STRATEGIES = {"__init__", "cascade", "prompts"}


class ParamSpec(BaseModel):
    """One declared strategy parameter."""

    type: Literal["int", "float", "bool"]
    default: int | float | bool
    min: float | None = None
    max: float | None = None
    doc: str
    aliases: list[Alias] = Field(
        default_factory=list,
        max_length=24,
        description="How traders call it, in Portuguese and English (the request interpreter matches these)",
    )

    @model_validator(mode="after")
    def _default_in_bounds(self) -> ParamSpec:
        check_value("default", self, self.default)
        return self


def check_value(name: str, spec: ParamSpec, value: Any) -> int | float | bool:
    """Coerce ``value`` to the declared type or raise one StrategyError naming the problem."""
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise StrategyError(f"parameter {name!r} must be a bool, got {value!r}")
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise StrategyError(f"parameter {name!r} must be a {spec.type}, got {value!r}") from None
    if not np.isfinite(number):
        raise StrategyError(f"parameter {name!r} must be finite, got {value!r}")
    if spec.type == "int":
        if number != int(number):
            raise StrategyError(f"parameter {name!r} must be an int, got {value!r}")
        number = int(number)
    if spec.min is not None and number < spec.min or spec.max is not None and number > spec.max:
        raise StrategyError(f"parameter {name!r}={value!r} is outside its bounds [{spec.min}, {spec.max}]")
    return number


def read_param_specs(path: Path) -> dict[str, ParamSpec]:
    """Read ``PARAMS`` from a strategy file's source without executing it."""
    found = read_literals(path, {"PARAMS"}, StrategyError)
    if "PARAMS" not in found:
        raise StrategyError(f"{path.name}: no top-level PARAMS declaration")
    raw = found["PARAMS"]
    if not isinstance(raw, dict):
        raise StrategyError(f"{path.name}: PARAMS must be a dict")
    specs: dict[str, ParamSpec] = {}
    for name, spec in raw.items():
        try:
            specs[name] = ParamSpec.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StrategyError(f"{path.name}: PARAMS[{name!r}] {where}: {first['msg']}") from None
        except StrategyError as exc:
            raise StrategyError(f"{path.name}: {exc}") from None
    return specs


def read_description(path: Path) -> str:
    """The first line of a strategy file's module docstring, read without executing it."""
    import ast

    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError as exc:
        raise StrategyError(f"{path.name}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def read_aliases(path: Path) -> list[str]:
    """The strategy's ``ALIASES`` (how traders call it), read without executing it; [] if none."""
    found = read_literals(path, {"ALIASES"}, StrategyError).get("ALIASES", [])
    if not isinstance(found, list) or not all(isinstance(a, str) and 0 < len(a) <= 40 for a in found):
        raise StrategyError(f"{path.name}: ALIASES must be a list of short strings")
    return found


def available_strategies(strategies_dir: Path) -> list[str]:
    return sorted(
        p.stem for p in strategies_dir.glob("*.py") if p.stem not in NOT_STRATEGIES and not p.stem.startswith("_")
    )


@dataclass
class Strategy:
    """A loaded strategy module with validated parameters."""

    name: str
    path: Path
    specs: dict[str, ParamSpec]
    params: Params
    module: ModuleType

    @property
    def description(self) -> str:
        return (self.module.__doc__ or "").strip().splitlines()[0] if self.module.__doc__ else ""

    def lookback(self) -> int:
        return int(self.module.lookback(self.params))

    def features(self, bars: Any) -> dict[str, np.ndarray]:
        return self.module.features(bars, self.params)

    def decide(self, feats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.module.decide(feats, self.params)

    def signals(self, bars: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, side, reason) per bar: ``decide(features(bars))``."""
        return self.decide(self.features(bars))

    def param(self, name: str, default: float) -> float:
        return float(getattr(self.params, name, default))


def resolve_params(specs: dict[str, ParamSpec], overrides: dict[str, Any] | None, strategy: str) -> Params:
    values = {name: spec.default for name, spec in specs.items()}
    for name, value in (overrides or {}).items():
        if name not in specs:
            known = ", ".join(sorted(specs))
            raise StrategyError(f"strategy {strategy!r} has no parameter {name!r} (has: {known})")
        values[name] = check_value(name, specs[name], value)
    return Params(values)


def load_strategy(name: str, strategies_dir: Path, overrides: dict[str, Any] | None = None) -> Strategy:
    """Load ``strategies_dir/<name>.py`` by path (so a git worktree's copy can be loaded)."""
    path = strategies_dir / f"{name}.py"
    if name in NOT_STRATEGIES or not name.isidentifier() or not path.is_file():
        known = ", ".join(available_strategies(strategies_dir)) or "none"
        raise StrategyError(f"unknown strategy {name!r} in {strategies_dir} (available: {known})")
    specs = read_param_specs(path)
    params = resolve_params(specs, overrides, name)
    module = _import_by_path(name, path)
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise StrategyError(f"strategy {name!r} does not define {', '.join(missing)}()")
    return Strategy(name=name, path=path, specs=specs, params=params, module=module)


def _import_by_path(name: str, path: Path) -> ModuleType:
    # A unique module name per file content keeps two versions (say, the deployed one and
    # a candidate worktree) importable side by side in one process.
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    mod_name = f"sorte_strategy_{name}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load strategy file {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure is the strategy's fault
        raise StrategyError(f"strategy {name!r} failed to import: {type(exc).__name__}: {exc}") from exc
    sys.modules[mod_name] = module
    return module
