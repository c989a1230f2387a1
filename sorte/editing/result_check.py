"""The whole result of a plan checked before anything is written: every changed strategy loads
and answers lookback(), the cascade rebuilds, the prompts check. Literals are read on the host;
the edited code is imported only in the sandboxed validator (``sorte.editing.sandboxed``)."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sorte.editing.plan import EditPlan, EditRefused
from sorte.editing.policy import EDITABLE
from sorte.editing.sandboxed import ValidatorError, isolation_warnings, run_checks
from sorte.editing.workspace import CASCADE, PROMPTS, Workspace
from sorte.errors import CascadeError, StrategyError
from sorte.runtime.strategy import NOT_STRATEGIES


def validate_result(ws: Workspace, plan: EditPlan, changed: dict[str, tuple[str, str]]) -> list[str]:
    """The result must parse and import: every changed strategy loads and answers lookback(),
    the cascade rebuilds (each enabled strategy stage loads with its params), prompts check.
    Returns what isolation the sandboxed validator lacked, when it ran the plan's code.

    Literals (PARAMS, STAGES, PROMPTS) are read here without running anything; importing the
    edited code happens only in the sandboxed validator (``sorte.editing.sandboxed``), never in
    this process: a plan's code must not run on the host, not even on a dry run."""
    touched = [rel for rel in changed if rel.startswith(f"{EDITABLE}/")]
    if not touched:
        return []
    files = _strategy_files(ws, changed)
    last = max(ws.last_op[rel] for rel in touched)
    checks: list[dict] = []
    host_failure: tuple[int, Exception] | None = None
    with tempfile.TemporaryDirectory(prefix="sorte-edit-") as tmp:
        folder = Path(tmp) / EDITABLE
        for rel, text in files.items():
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        try:
            # Strategy modules are the top-level files; nested helpers are checked through them.
            for rel in (r for r in touched if Path(r).parent == Path(EDITABLE)):
                stem = Path(rel).stem
                if stem in NOT_STRATEGIES:
                    continue
                index = ws.last_op[rel]
                params = _host_step(index, functools.partial(_default_params, folder, stem))
                checks.append({"tag": index, "stem": stem, "params": params, "stage": None})
            cascade_index = ws.last_op.get(CASCADE, last)
            definition = _host_step(cascade_index, lambda: _read_cascade(folder))
            if any(rel != PROMPTS for rel in touched):  # prompts alone cannot break a strategy stage
                for sd in definition.enabled_stages:
                    if sd.kind == "strategy":
                        params = _host_step(cascade_index, functools.partial(_stage_params, folder, sd))
                        checks.append({"tag": cascade_index, "stem": sd.strategy, "params": params, "stage": sd.name})
            _host_step(cascade_index, lambda: _check_llm_prompts(folder, definition))
            if PROMPTS in changed:
                _host_step(ws.last_op[PROMPTS], lambda: _check_prompts(folder))
        except _HostFailure as exc:
            host_failure = (exc.index, exc.error)
    if checks:
        try:
            failure = run_checks(files, checks)
        except ValidatorError as exc:
            raise EditRefused(last, plan.ops[last].op, f"the result could not be validated: {exc}") from None
        if failure is not None:
            tag = failure.get("tag")
            index = tag if isinstance(tag, int) and 0 <= tag < len(plan.ops) else last
            raise EditRefused(index, plan.ops[index].op, f"the result does not validate: {failure.get('detail')}")
    if host_failure is not None:
        index, error = host_failure
        raise EditRefused(index, plan.ops[index].op, f"the result does not validate: {_detail(error)}") from None
    return isolation_warnings() if checks else []


class _HostFailure(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


def _host_step(index: int, step: Callable[[], Any]) -> Any:
    """Run a literal-only check on the host; a failure stops the checks after it (they are
    reported after the sandboxed ones that come before it, as the old in-process order did)."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - any failure of the edited files refuses the plan
        raise _HostFailure(index, exc) from None


def _detail(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StrategyError | CascadeError) else f"{type(exc).__name__}: {exc}"


def _strategy_files(ws: Workspace, changed: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Every .py file under strategies/ (nested helpers too) as it would be after the plan.
    Symlinks are not followed: their target may be anything on the host."""
    files: dict[str, str] = {}
    base = ws.root / EDITABLE
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not (Path(dirpath) / d).is_symlink()]
        for name in filenames:
            path = Path(dirpath) / name
            if name.endswith(".py") and not path.is_symlink() and path.is_file():
                files[path.relative_to(ws.root).as_posix()] = path.read_bytes().decode()
    for rel, (_, after) in changed.items():
        if rel.startswith(f"{EDITABLE}/"):
            files[rel] = after
    return files


def _default_params(folder: Path, stem: str) -> dict:
    from sorte.runtime.strategy import read_aliases, read_param_specs, resolve_params

    read_aliases(folder / f"{stem}.py")  # the interpreter reads them: they must stay valid
    return resolve_params(read_param_specs(folder / f"{stem}.py"), None, stem).as_dict()


def _read_cascade(folder: Path) -> Any:
    from sorte.runtime.cascade import read_cascade

    return read_cascade(folder / "cascade.py")


def _stage_params(folder: Path, sd: Any) -> dict:
    """What build_cascade checks before it imports a stage's strategy, read from literals."""
    from sorte.runtime.strategy import available_strategies, read_param_specs, resolve_params

    name = sd.strategy or ""
    path = folder / f"{name}.py"
    try:
        if name in NOT_STRATEGIES or not name.isidentifier() or not path.is_file():
            known = ", ".join(available_strategies(folder)) or "none"
            raise StrategyError(f"unknown strategy {name!r} in {folder.name} (available: {known})")
        return resolve_params(read_param_specs(path), sd.params, name).as_dict()
    except StrategyError as exc:
        raise CascadeError(f"cascade stage {sd.name!r}: {exc}") from None


def _check_llm_prompts(folder: Path, definition: Any) -> None:
    # Without a model, build_cascade does not read the prompts: check the enabled LLM stages have theirs.
    llm_stages = [s for s in definition.enabled_stages if s.kind == "llm"]
    if llm_stages:
        from sorte.runtime.cascade.prompts import read_prompts

        _, prompts = read_prompts(folder / "prompts.py")
        for s in llm_stages:
            if (s.prompt or s.name) not in prompts:
                raise CascadeError(f"cascade stage {s.name!r}: no prompt {s.prompt or s.name!r} in prompts.py")


def _check_prompts(folder: Path) -> None:
    from sorte.runtime.cascade.prompts import read_prompts

    read_prompts(folder / "prompts.py")
