"""LibCST transforms of literals: one per operation kind that changes a value (code edits:
``sorte.editing.code_transforms``).

Each transform takes a file's source and returns the new source. Only the target node is
rebuilt, so formatting and comments elsewhere stay byte-for-byte identical, and a transform
whose target already has the requested content returns the source unchanged (idempotence).
Problems with the target (missing, ambiguous, invalid value) raise PolicyError.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import libcst as cst
import libcst.matchers as m

from sorte.editing.plan import (
    EditPrompt,
    SetMinConfidence,
    SetStage,
)
from sorte.editing.policy import PolicyError

PROMPT_CHUNK = 90
LINE_LENGTH = 120


def parse(source: str, filename: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise PolicyError(f"{filename} does not parse: {exc.message} (line {exc.raw_line})") from None


def literal_expr(value: Any) -> cst.BaseExpression:
    """A LibCST expression for a Python literal (repr of floats round-trips exactly)."""
    return cst.parse_expression(repr(value))


def literal_value(node: cst.BaseExpression) -> Any:
    """The Python value of a literal node, or a sentinel when it is not a literal."""
    try:
        return ast.literal_eval(cst.Module([]).code_for_node(node))
    except (ValueError, SyntaxError):
        return _NOT_LITERAL


_NOT_LITERAL = object()


def same_literal(node: cst.BaseExpression, value: Any) -> bool:
    current = literal_value(node)
    return type(current) is type(value) and current == value


# --- top-level assignments -------------------------------------------------------------


def _assignment(module: cst.Module, name: str) -> tuple[int, cst.Assign]:
    """Index in ``module.body`` and node of the single top-level ``NAME = ...``."""
    wanted = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name(name))])])
    found = [
        (i, assign)
        for i, stmt in enumerate(module.body)
        if isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(assign := stmt.body[0], cst.Assign)
        and m.matches(stmt, wanted)
    ]
    if not found:
        raise PolicyError(f"no top-level {name} assignment")
    if len(found) > 1:
        raise PolicyError(f"{name} is assigned {len(found)} times (ambiguous)")
    return found[0]


def _replace_assignment(module: cst.Module, name: str, rebuild: Callable[[cst.BaseExpression], Any]) -> cst.Module:
    index, assign = _assignment(module, name)
    new_value = rebuild(assign.value)
    if new_value is assign.value:
        return module
    stmt = module.body[index]
    assert isinstance(stmt, cst.SimpleStatementLine)
    new_stmt = stmt.with_changes(body=[assign.with_changes(value=new_value)])
    return module.with_changes(body=[*module.body[:index], new_stmt, *module.body[index + 1 :]])


def _key_of(element: cst.BaseDictElement) -> Any:
    return literal_value(element.key) if isinstance(element, cst.DictElement) else _NOT_LITERAL


def _dict_entry(node: cst.BaseExpression, key: str, what: str) -> tuple[int, cst.DictElement]:
    if not isinstance(node, cst.Dict):
        raise PolicyError(f"{what} is not a dict literal")
    found = [(i, e) for i, e in enumerate(node.elements) if _key_of(e) == key]
    if not found:
        known = ", ".join(str(_key_of(e)) for e in node.elements)
        raise PolicyError(f"{what} has no entry {key!r} (has: {known})")
    if len(found) > 1:
        raise PolicyError(f"{what} has {len(found)} entries {key!r} (ambiguous)")
    index, element = found[0]
    assert isinstance(element, cst.DictElement)
    return index, element


def _set_dict_value(node: cst.Dict, index: int, value: cst.BaseExpression) -> cst.Dict:
    elements = list(node.elements)
    elements[index] = elements[index].with_changes(value=value)
    return node.with_changes(elements=elements)


def _upsert(node: cst.Dict, key: str, value: Any) -> cst.Dict:
    """Set ``key`` to ``value`` in a dict literal, appending the entry when it is missing."""
    for i, element in enumerate(node.elements):
        if _key_of(element) == key:
            assert isinstance(element, cst.DictElement)
            return node if same_literal(element.value, value) else _set_dict_value(node, i, literal_expr(value))
    elements = list(node.elements)
    if elements and elements[-1].comma is cst.MaybeSentinel.DEFAULT:
        elements[-1] = elements[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    elements.append(cst.DictElement(key=literal_expr(key), value=literal_expr(value)))
    return node.with_changes(elements=elements)


# --- literal edits ---------------------------------------------------------------------


def set_param_default(source: str, strategy: str, name: str, value: Any) -> str:
    """PARAMS[name]["default"] = value (the value is already checked against the declared spec)."""
    module = parse(source, strategy)

    def rebuild(params: cst.BaseExpression) -> cst.BaseExpression:
        index, entry = _dict_entry(params, name, f"{strategy} PARAMS")
        if not isinstance(entry.value, cst.Dict):
            raise PolicyError(f"{strategy} PARAMS[{name!r}] is not a dict literal")
        d_index, default = _dict_entry(entry.value, "default", f"{strategy} PARAMS[{name!r}]")
        if same_literal(default.value, value):
            return params
        spec = _set_dict_value(entry.value, d_index, literal_expr(value))
        assert isinstance(params, cst.Dict)
        return _set_dict_value(params, index, spec)

    return _replace_assignment(module, "PARAMS", rebuild).code


def set_min_confidence(source: str, op: SetMinConfidence) -> str:
    module = parse(source, "cascade")

    def rebuild(node: cst.BaseExpression) -> cst.BaseExpression:
        return node if same_literal(node, op.value) else literal_expr(op.value)

    return _replace_assignment(module, "MIN_CONFIDENCE", rebuild).code


def set_aliases(source: str, aliases: list[str]) -> str:
    """Replace a strategy module's ``ALIASES`` list (how traders call it)."""
    module = parse(source, "strategy")

    def rebuild(node: cst.BaseExpression) -> cst.BaseExpression:
        return node if same_literal(node, list(aliases)) else literal_expr(list(aliases))

    return _replace_assignment(module, "ALIASES", rebuild).code


def set_stage(source: str, op: SetStage) -> str:
    module = parse(source, "cascade")

    def rebuild(stages: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(stages, cst.List):
            raise PolicyError("STAGES is not a list literal")
        values = [e.value for e in stages.elements]
        matches = [i for i, v in enumerate(values) if isinstance(v, cst.Dict) and _has_name(v, op.stage)]
        if not matches:
            raise PolicyError(f"no cascade stage named {op.stage!r}")
        if len(matches) > 1:
            raise PolicyError(f"{len(matches)} cascade stages are named {op.stage!r} (ambiguous)")
        index = matches[0]
        stage = values[index]
        assert isinstance(stage, cst.Dict)
        for key in ("threshold", "weight", "enabled"):
            if getattr(op, key) is not None:
                stage = _upsert(stage, key, _typed(key, getattr(op, key)))
        values[index] = stage
        if op.position is not None:
            if op.position >= len(values):
                raise PolicyError(f"position {op.position} is past the last stage (there are {len(values)})")
            values.insert(op.position, values.pop(index))
        if all(a is b for a, b in zip(values, (e.value for e in stages.elements), strict=True)):
            return stages
        # Moving values between the existing element shells keeps every comma and line break in place.
        elements = [e.with_changes(value=v) for e, v in zip(stages.elements, values, strict=True)]
        return stages.with_changes(elements=elements)

    return _replace_assignment(module, "STAGES", rebuild).code


def _has_name(node: cst.Dict, name: str) -> bool:
    return any(_key_of(e) == "name" and literal_value(e.value) == name for e in node.elements)


def _typed(key: str, value: Any) -> Any:
    return bool(value) if key == "enabled" else float(value)


def edit_prompt(source: str, op: EditPrompt) -> str:
    module = parse(source, "prompts")

    def rebuild(prompts: cst.BaseExpression) -> cst.BaseExpression:
        index, entry = _dict_entry(prompts, op.prompt, "PROMPTS")
        if literal_value(entry.value) == op.template:
            return prompts
        assert isinstance(prompts, cst.Dict)
        return _set_dict_value(prompts, index, prompt_literal(op.template, key=op.prompt))

    return _replace_assignment(module, "PROMPTS", rebuild).code


def prompt_literal(text: str, key: str = "", indent: str = "    ") -> cst.BaseExpression:
    """One string when the entry fits on a line, else a parenthesised implicit concatenation with one
    chunk per line: the file's own style, which the formatter leaves as it is."""
    chunks = _chunks(text, PROMPT_CHUNK)
    if len(chunks) == 1 or len(indent) + len(_quote(key)) + len(_quote(text)) + 3 <= LINE_LENGTH:
        return cst.parse_expression(_quote(text))
    lines = "".join(f"{indent}    {_quote(c)}\n" for c in chunks)
    return cst.parse_expression(f"(\n{lines}{indent})")


def _chunks(text: str, width: int) -> list[str]:
    chunks, current = [], ""
    for word in text.split(" "):
        piece = word if not current else " " + word
        if current and len(current) + len(piece) > width:
            chunks.append(current + " ")
            current = word
        else:
            current += piece
    chunks.append(current)
    return chunks


def _quote(text: str) -> str:
    """A string literal preferring double quotes (the project's style), exact for any content."""
    r = repr(text)
    if r.startswith("'") and '"' not in text:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


def set_docstring(source: str, text: str) -> str:
    """Replace (or add) the module docstring with one line of text."""
    if "\n" in text or "\r" in text:
        raise PolicyError("the description must be one line")
    module = parse(source, "template")
    quoted = f'"""{text}"""' if '"' not in text and "\\" not in text else _quote(text)
    doc = cst.SimpleStatementLine(body=[cst.Expr(value=cst.parse_expression(quoted))])
    body = list(module.body)
    if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])):
        body[0] = body[0].with_changes(body=doc.body)
    else:
        body.insert(0, doc)
    return module.with_changes(body=body).code
