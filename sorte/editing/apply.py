"""Apply an EditPlan: every operation in memory first, then the whole result checked (parse,
forbidden code, strategy import, cascade and prompts validation), and only then written.
Any refusal raises EditRefused naming the operation and writes nothing.

The plan's code is never run in this process: importing the edited strategies happens in
the sandboxed validator (``sorte.editing.sandboxed``)."""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sorte.editing import code_transforms as code_tx
from sorte.editing import transforms as tx
from sorte.editing.code_policy import check_code
from sorte.editing.plan import (
    ALLOWED_IMPORTS,
    AddFunction,
    AddImport,
    AddStrategy,
    AddTest,
    EditPlan,
    EditPrompt,
    EditRefused,
    RemoveFunction,
    ReplaceBody,
    SetMinConfidence,
    SetParam,
    SetStage,
)
from sorte.editing.policy import EDITABLE, PolicyError, build_manifest, check_manifest, check_path
from sorte.editing.result_check import validate_result
from sorte.editing.workspace import CASCADE, PROMPTS, TEMPLATE, Workspace, write_changes
from sorte.errors import CascadeError, StrategyError
from sorte.runtime.strategy import NOT_STRATEGIES, REQUIRED_FUNCTIONS, ParamSpec, check_value


class EditResult(BaseModel):
    """What a plan changed: repo-relative path -> (before, after) text ('' before for a new file),
    and what isolation the validation that ran the plan's code lacked (empty when it had it all)."""

    changed: dict[str, tuple[str, str]] = Field(default_factory=dict)
    diff: str = ""
    summary: str = ""
    warnings: list[str] = Field(default_factory=list)


def apply_plan(plan: EditPlan, root: Path, *, write: bool = True) -> EditResult:
    """Apply ``plan`` to the tree at ``root`` (dry run with ``write=False``); raises EditRefused."""
    root = Path(root)
    ws = Workspace(root)
    for index, op in enumerate(plan.ops):
        try:
            for rel, text in _apply_op(ws, op).items():
                check_code(text, rel)
                ws.put(rel, text, index)
        except (PolicyError, StrategyError, CascadeError) as exc:
            raise EditRefused(index, op.op, str(exc)) from None
    changed = ws.changed()
    # Taken before validation too: nothing may change a protected file while the plan is
    # checked (the validator runs sandboxed, this proves it), nor while it is written.
    manifest = build_manifest(root) if changed else {}
    warnings = validate_result(ws, plan, changed)
    if changed:
        try:
            check_manifest(root, manifest)
        except PolicyError as exc:
            raise EditRefused(None, None, f"{exc} (while the plan was validated)") from None
    if write and changed:
        write_changes(root, changed, manifest, new_files={rel for rel in changed if ws.originals[rel] is None})
    diff = unified_diff(changed, ws.originals)
    return EditResult(changed=changed, diff=diff, summary=plan.summary, warnings=warnings)


def unified_diff(changed: dict[str, tuple[str, str]], originals: dict[str, str | None] | None = None) -> str:
    """A git-style unified diff (a/ b/ prefixes, /dev/null for new files)."""
    parts: list[str] = []
    for rel, (before, after) in changed.items():
        new = originals is not None and originals.get(rel) is None
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            "/dev/null" if new else f"a/{rel}",
            f"b/{rel}",
        )
        parts.extend(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return "".join(parts)


# --- operations ------------------------------------------------------------------------


def _apply_op(ws: Workspace, op: object) -> dict[str, str]:
    """The new text of each file the operation touches (unchanged text when already applied)."""
    handler = _HANDLERS[type(op)]
    return handler(ws, op)


def _strategy_file(ws: Workspace, name: str) -> str:
    if name in NOT_STRATEGIES:
        raise PolicyError(f"{name!r} is not a strategy module")
    rel = f"{EDITABLE}/{name}.py"
    check_path(rel, ws.root)
    return rel


def _set_param(ws: Workspace, op: SetParam) -> dict[str, str]:
    rel = _strategy_file(ws, op.strategy)
    source = ws.read(rel)
    value = _checked_value(source, rel, op.name, op.value)
    return {rel: tx.set_param_default(source, rel, op.name, value)}


def _checked_value(source: str, rel: str, name: str, value: object) -> int | float | bool:
    specs = _declared_params(source, rel)
    if name not in specs:
        raise PolicyError(f"{rel} declares no parameter {name!r} (has: {', '.join(specs)})")
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) > 2**53:
        # check_value cannot take these (numpy overflows on huge ints, int(inf) raises): refuse them here.
        raise PolicyError(f"parameter {name!r}={value!r} is outside its bounds (not a finite number)")
    return check_value(name, ParamSpec.model_validate(specs[name]), value)


def _declared_params(source: str, rel: str) -> dict:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["PARAMS"]:
            try:
                params = ast.literal_eval(node.value)
            except ValueError:
                break
            if isinstance(params, dict):
                return params
    raise PolicyError(f"{rel} has no PARAMS dict literal")


def _set_stage(ws: Workspace, op: SetStage) -> dict[str, str]:
    return {CASCADE: tx.set_stage(ws.read(CASCADE), op)}


def _set_min_confidence(ws: Workspace, op: SetMinConfidence) -> dict[str, str]:
    return {CASCADE: tx.set_min_confidence(ws.read(CASCADE), op)}


def _replace_body(ws: Workspace, op: ReplaceBody) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    return {rel: code_tx.replace_body(ws.read(rel), op)}


def _add_function(ws: Workspace, op: AddFunction) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    return {rel: code_tx.add_function(ws.read(rel), op)}


def _remove_function(ws: Workspace, op: RemoveFunction) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    stem = Path(rel).stem
    if op.name in REQUIRED_FUNCTIONS and stem not in NOT_STRATEGIES:
        raise PolicyError(f"{op.name}() is required in every strategy module")
    new = code_tx.remove_function(ws.read(rel), op)
    for other, text in ws.strategy_sources().items():
        used = code_tx.references(new if other == rel else text, op.name)
        if used:
            raise PolicyError(f"{op.name!r} is still referenced in {other} ({used} use(s))")
    return {rel: new}


def _add_import(ws: Workspace, op: AddImport) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    if op.module not in ALLOWED_IMPORTS:
        raise PolicyError(f"import of {op.module!r} is not allowed (allowed: {', '.join(ALLOWED_IMPORTS)})")
    bad = [n for n in op.names if not n.isidentifier()]
    if bad or (op.names and op.alias):
        raise PolicyError(f"invalid import names {bad}" if bad else "'alias' only applies to a plain import")
    return {rel: code_tx.add_import(ws.read(rel), op)}


def _add_strategy(ws: Workspace, op: AddStrategy) -> dict[str, str]:
    rel = f"{EDITABLE}/{op.name}.py"
    if op.name in NOT_STRATEGIES:
        raise PolicyError(f"{op.name!r} is a reserved module name")
    check_path(rel, ws.root)
    text = ws.read(TEMPLATE)
    if op.description is not None:
        text = tx.set_docstring(text, op.description)
    for name, value in op.params.items():
        text = tx.set_param_default(text, rel, name, _checked_value(text, TEMPLATE, name, value))
    if op.aliases:
        text = tx.set_aliases(text, op.aliases)
    existing = ws.get(rel)
    if existing is not None and existing != text:
        raise PolicyError(f"{rel} already exists")
    return {rel: text}


def _add_test(ws: Workspace, op: AddTest) -> dict[str, str]:
    rel = check_path(op.path, ws.root, new_test=True).as_posix()
    if not Path(rel).name.startswith("test_"):
        raise PolicyError(f"test file name {Path(rel).name!r} must start with 'test_'")
    existing = ws.get(rel)
    if existing is not None and existing != op.source:
        raise PolicyError(f"{rel} is an existing test file: existing tests can never be changed")
    return {rel: op.source}


def _edit_prompt(ws: Workspace, op: EditPrompt) -> dict[str, str]:
    from sorte.runtime.cascade.prompts import check_template  # the LLM layer is only needed for prompt edits

    check_template(op.prompt, op.template)
    return {PROMPTS: tx.edit_prompt(ws.read(PROMPTS), op)}


_HANDLERS: dict[type, Callable[[Workspace, Any], dict[str, str]]] = {
    SetParam: _set_param,
    SetStage: _set_stage,
    SetMinConfidence: _set_min_confidence,
    ReplaceBody: _replace_body,
    AddFunction: _add_function,
    RemoveFunction: _remove_function,
    AddImport: _add_import,
    AddStrategy: _add_strategy,
    AddTest: _add_test,
    EditPrompt: _edit_prompt,
}
