"""Apply an EditPlan: every operation in memory first, then the whole result checked (parse,
forbidden code, strategy import, cascade and prompts validation), and only then written.
Any refusal raises EditRefused naming the operation and writes nothing."""

from __future__ import annotations

import ast
import difflib
import math
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from sorte.editing import transforms as tx
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
from sorte.editing.policy import EDITABLE, PolicyError, build_manifest, check_code, check_manifest, check_path
from sorte.errors import CascadeError, StrategyError
from sorte.runtime.strategy import NOT_STRATEGIES, REQUIRED_FUNCTIONS, ParamSpec, check_value

CASCADE = "strategies/cascade.py"
PROMPTS = "strategies/prompts.py"
TEMPLATE = "strategies/_template.py"


class EditResult(BaseModel):
    """What a plan changed: repo-relative path -> (before, after) text ('' before for a new file)."""

    changed: dict[str, tuple[str, str]] = Field(default_factory=dict)
    diff: str = ""
    summary: str = ""


class _Workspace:
    """The files a plan touches, in memory: read from disk once, then edited here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: dict[str, str | None] = {}
        self.originals: dict[str, str | None] = {}
        self.last_op: dict[str, int] = {}

    def get(self, rel: str) -> str | None:
        if rel not in self.texts:
            path = self.root / rel
            text = path.read_bytes().decode() if path.is_file() else None
            self.texts[rel] = self.originals[rel] = text
        return self.texts[rel]

    def read(self, rel: str) -> str:
        text = self.get(rel)
        if text is None:
            raise PolicyError(f"{rel} does not exist")
        return text

    def put(self, rel: str, text: str, op_index: int) -> None:
        if text != self.get(rel):
            self.texts[rel] = text
            self.last_op[rel] = op_index

    def changed(self) -> dict[str, tuple[str, str]]:
        return {
            rel: (self.originals[rel] or "", text)
            for rel, text in sorted(self.texts.items())
            if text is not None and text != self.originals[rel]
        }

    def strategy_sources(self) -> dict[str, str]:
        """Every strategies/*.py as it would be after the plan."""
        files = {f"{EDITABLE}/{p.name}" for p in (self.root / EDITABLE).glob("*.py")}
        files |= {rel for rel in self.texts if rel.startswith(f"{EDITABLE}/")}
        return {rel: text for rel in sorted(files) if (text := self.get(rel)) is not None}


def apply_plan(plan: EditPlan, root: Path, *, write: bool = True) -> EditResult:
    """Apply ``plan`` to the tree at ``root`` (dry run with ``write=False``); raises EditRefused."""
    root = Path(root)
    ws = _Workspace(root)
    for index, op in enumerate(plan.ops):
        try:
            for rel, text in _apply_op(ws, op).items():
                check_code(text, rel)
                ws.put(rel, text, index)
        except (PolicyError, StrategyError, CascadeError) as exc:
            raise EditRefused(index, op.op, str(exc)) from None
    changed = ws.changed()
    _validate(ws, plan, changed)
    if write and changed:
        _write(root, changed, new_files={rel for rel in changed if ws.originals[rel] is None})
    return EditResult(changed=changed, diff=unified_diff(changed, ws.originals), summary=plan.summary)


def unified_diff(changed: dict[str, tuple[str, str]], originals: dict[str, str | None] | None = None) -> str:
    """A git-style unified diff (a/ b/ prefixes, /dev/null for new files)."""
    parts = []
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


def _apply_op(ws: _Workspace, op: object) -> dict[str, str]:
    """The new text of each file the operation touches (unchanged text when already applied)."""
    handler = _HANDLERS[type(op)]
    return handler(ws, op)


def _strategy_file(ws: _Workspace, name: str) -> str:
    if name in NOT_STRATEGIES:
        raise PolicyError(f"{name!r} is not a strategy module")
    rel = f"{EDITABLE}/{name}.py"
    check_path(rel, ws.root)
    return rel


def _set_param(ws: _Workspace, op: SetParam) -> dict[str, str]:
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


def _set_stage(ws: _Workspace, op: SetStage) -> dict[str, str]:
    return {CASCADE: tx.set_stage(ws.read(CASCADE), op)}


def _set_min_confidence(ws: _Workspace, op: SetMinConfidence) -> dict[str, str]:
    return {CASCADE: tx.set_min_confidence(ws.read(CASCADE), op)}


def _replace_body(ws: _Workspace, op: ReplaceBody) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    return {rel: tx.replace_body(ws.read(rel), op)}


def _add_function(ws: _Workspace, op: AddFunction) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    return {rel: tx.add_function(ws.read(rel), op)}


def _remove_function(ws: _Workspace, op: RemoveFunction) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    stem = Path(rel).stem
    if op.name in REQUIRED_FUNCTIONS and stem not in NOT_STRATEGIES:
        raise PolicyError(f"{op.name}() is required in every strategy module")
    new = tx.remove_function(ws.read(rel), op)
    for other, text in ws.strategy_sources().items():
        used = tx.references(new if other == rel else text, op.name)
        if used:
            raise PolicyError(f"{op.name!r} is still referenced in {other} ({used} use(s))")
    return {rel: new}


def _add_import(ws: _Workspace, op: AddImport) -> dict[str, str]:
    rel = check_path(op.file, ws.root).as_posix()
    if op.module not in ALLOWED_IMPORTS:
        raise PolicyError(f"import of {op.module!r} is not allowed (allowed: {', '.join(ALLOWED_IMPORTS)})")
    bad = [n for n in op.names if not n.isidentifier()]
    if bad or (op.names and op.alias):
        raise PolicyError(f"invalid import names {bad}" if bad else "'alias' only applies to a plain import")
    return {rel: tx.add_import(ws.read(rel), op)}


def _add_strategy(ws: _Workspace, op: AddStrategy) -> dict[str, str]:
    rel = f"{EDITABLE}/{op.name}.py"
    if op.name in NOT_STRATEGIES:
        raise PolicyError(f"{op.name!r} is a reserved module name")
    check_path(rel, ws.root)
    text = ws.read(TEMPLATE)
    if op.description is not None:
        text = tx.set_docstring(text, op.description)
    for name, value in op.params.items():
        text = tx.set_param_default(text, rel, name, _checked_value(text, TEMPLATE, name, value))
    existing = ws.get(rel)
    if existing is not None and existing != text:
        raise PolicyError(f"{rel} already exists")
    return {rel: text}


def _add_test(ws: _Workspace, op: AddTest) -> dict[str, str]:
    rel = check_path(op.path, ws.root, new_test=True).as_posix()
    if not Path(rel).name.startswith("test_"):
        raise PolicyError(f"test file name {Path(rel).name!r} must start with 'test_'")
    existing = ws.get(rel)
    if existing is not None and existing != op.source:
        raise PolicyError(f"{rel} is an existing test file: existing tests can never be changed")
    return {rel: op.source}


def _edit_prompt(ws: _Workspace, op: EditPrompt) -> dict[str, str]:
    from sorte.llm.stages import check_template  # the LLM layer is only needed for prompt edits

    check_template(op.prompt, op.template)
    return {PROMPTS: tx.edit_prompt(ws.read(PROMPTS), op)}


_HANDLERS = {
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


# --- whole-result validation and writing ----------------------------------------------


def _validate(ws: _Workspace, plan: EditPlan, changed: dict[str, tuple[str, str]]) -> None:
    """Load every changed strategy and rebuild the cascade from a temporary copy of strategies/."""
    touched = [rel for rel in changed if rel.startswith(f"{EDITABLE}/")]
    if not touched:
        return
    with tempfile.TemporaryDirectory(prefix="sorte-edit-") as tmp:
        folder = Path(tmp) / EDITABLE
        shutil.copytree(ws.root / EDITABLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
        for rel in touched:
            target = folder / Path(rel).relative_to(EDITABLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(changed[rel][1])
        # Strategy modules are the top-level files; nested helpers are checked through them.
        for rel in (r for r in touched if Path(r).parent == Path(EDITABLE)):
            _guarded(plan, ws.last_op[rel], lambda rel=rel: _check_module(folder, Path(rel).stem))
        last = max(ws.last_op[rel] for rel in touched)
        _guarded(plan, ws.last_op.get(CASCADE, last), lambda: _check_cascade(folder))
        if PROMPTS in changed:
            _guarded(plan, ws.last_op[PROMPTS], lambda: _check_prompts(folder))


def _guarded(plan: EditPlan, index: int, check: object) -> None:
    try:
        check()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - any failure of the edited code refuses the plan
        detail = str(exc) if isinstance(exc, StrategyError | CascadeError) else f"{type(exc).__name__}: {exc}"
        raise EditRefused(index, plan.ops[index].op, f"the result does not validate: {detail}") from None


def _check_module(folder: Path, stem: str) -> None:
    from sorte.runtime.strategy import load_strategy, read_param_specs

    if stem in NOT_STRATEGIES:
        return
    read_param_specs(folder / f"{stem}.py")
    load_strategy(stem, folder).lookback()


def _check_cascade(folder: Path) -> None:
    from sorte.runtime.cascade import build_cascade, read_cascade

    definition = read_cascade(folder / "cascade.py")
    build_cascade(definition, folder)
    # Without a model, build_cascade does not read the prompts: check the enabled LLM stages have theirs.
    llm_stages = [s for s in definition.enabled_stages if s.kind == "llm"]
    if llm_stages:
        from sorte.llm.stages import read_prompts

        _, prompts = read_prompts(folder / "prompts.py")
        for s in llm_stages:
            if (s.prompt or s.name) not in prompts:
                raise CascadeError(f"cascade stage {s.name!r}: no prompt {s.prompt or s.name!r} in prompts.py")


def _check_prompts(folder: Path) -> None:
    from sorte.llm.stages import read_prompts

    read_prompts(folder / "prompts.py")


def _write(root: Path, changed: dict[str, tuple[str, str]], new_files: set[str]) -> None:
    manifest = build_manifest(root)
    written: list[str] = []
    try:
        for rel, (_, after) in changed.items():
            # Checked again right before writing: a symlink could have appeared since the plan was read.
            check_path(rel, root, new_test=rel.startswith("tests/"))
            _atomic_write(root / rel, after)
            written.append(rel)
        check_manifest(root, manifest, allowed_new=new_files)
    except PolicyError as exc:
        _restore(root, changed, new_files, written)
        raise EditRefused(None, None, str(exc)) from None


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode())
    os.chmod(tmp, mode)  # mkstemp creates 0600; keep the file's own mode
    os.replace(tmp, path)


def _restore(root: Path, changed: dict[str, tuple[str, str]], new_files: set[str], written: list[str]) -> None:
    for rel in written:
        if rel in new_files:
            (root / rel).unlink(missing_ok=True)
        else:
            _atomic_write(root / rel, changed[rel][0])
