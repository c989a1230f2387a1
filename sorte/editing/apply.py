"""Apply an EditPlan: every operation in memory first, then the whole result checked (parse,
forbidden code, strategy import, cascade and prompts validation), and only then written.
Any refusal raises EditRefused naming the operation and writes nothing.

The plan's code is never run in this process: importing the edited strategies happens in
the sandboxed validator (``sorte.editing.sandboxed``)."""

from __future__ import annotations

import ast
import difflib
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from sorte.editing.sandboxed import ValidatorError, isolation_warnings, run_checks
from sorte.errors import CascadeError, StrategyError
from sorte.runtime.strategy import NOT_STRATEGIES, REQUIRED_FUNCTIONS, ParamSpec, check_value

CASCADE = "strategies/cascade.py"
PROMPTS = "strategies/prompts.py"
TEMPLATE = "strategies/_template.py"


class EditResult(BaseModel):
    """What a plan changed: repo-relative path -> (before, after) text ('' before for a new file),
    and what isolation the validation that ran the plan's code lacked (empty when it had it all)."""

    changed: dict[str, tuple[str, str]] = Field(default_factory=dict)
    diff: str = ""
    summary: str = ""
    warnings: list[str] = Field(default_factory=list)


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
    # Taken before validation too: nothing may change a protected file while the plan is
    # checked (the validator runs sandboxed, this proves it), nor while it is written.
    manifest = build_manifest(root) if changed else {}
    warnings = _validate(ws, plan, changed)
    if changed:
        try:
            check_manifest(root, manifest)
        except PolicyError as exc:
            raise EditRefused(None, None, f"{exc} (while the plan was validated)") from None
    if write and changed:
        _write(root, changed, manifest, new_files={rel for rel in changed if ws.originals[rel] is None})
    diff = unified_diff(changed, ws.originals)
    return EditResult(changed=changed, diff=diff, summary=plan.summary, warnings=warnings)


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
    if op.aliases:
        text = tx.set_aliases(text, op.aliases)
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
    from sorte.runtime.llm_stages import check_template  # the LLM layer is only needed for prompt edits

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


def _validate(ws: _Workspace, plan: EditPlan, changed: dict[str, tuple[str, str]]) -> list[str]:
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
                params = _host_step(index, lambda stem=stem: _default_params(folder, stem))
                checks.append({"tag": index, "stem": stem, "params": params, "stage": None})
            cascade_index = ws.last_op.get(CASCADE, last)
            definition = _host_step(cascade_index, lambda: _read_cascade(folder))
            if any(rel != PROMPTS for rel in touched):  # prompts alone cannot break a strategy stage
                for sd in definition.enabled_stages:
                    if sd.kind == "strategy":
                        params = _host_step(cascade_index, lambda sd=sd: _stage_params(folder, sd))
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
            index = failure.get("tag")
            index = index if isinstance(index, int) and 0 <= index < len(plan.ops) else last
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


def _strategy_files(ws: _Workspace, changed: dict[str, tuple[str, str]]) -> dict[str, str]:
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
        from sorte.runtime.llm_stages import read_prompts

        _, prompts = read_prompts(folder / "prompts.py")
        for s in llm_stages:
            if (s.prompt or s.name) not in prompts:
                raise CascadeError(f"cascade stage {s.name!r}: no prompt {s.prompt or s.name!r} in prompts.py")


def _check_prompts(folder: Path) -> None:
    from sorte.runtime.llm_stages import read_prompts

    read_prompts(folder / "prompts.py")


def _write(root: Path, changed: dict[str, tuple[str, str]], manifest: dict[str, str], new_files: set[str]) -> None:
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
