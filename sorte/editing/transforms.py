"""One LibCST transform per operation kind.

Each transform takes a file's source and returns the new source. Only the target node is
rebuilt, so formatting and comments elsewhere stay byte-for-byte identical, and a transform
whose target already has the requested content returns the source unchanged (idempotence).
Problems with the target (missing, ambiguous, invalid value) raise PolicyError.
"""

from __future__ import annotations

import ast
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import libcst as cst
import libcst.matchers as m

from sorte.editing.plan import (
    AddFunction,
    AddImport,
    EditPrompt,
    RemoveFunction,
    ReplaceBody,
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
    found = [
        (i, stmt.body[0])
        for i, stmt in enumerate(module.body)
        if m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name(name))])]))
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
    return any(_key_of(e) == "name" and literal_value(e.value) == name for e in node.elements)  # type: ignore[union-attr]


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


# --- functions -------------------------------------------------------------------------


def _functions(body: Sequence[cst.BaseStatement], name: str) -> list[int]:
    return [i for i, s in enumerate(body) if m.matches(s, m.FunctionDef(name=m.Name(name)))]


def _one(indices: list[int], what: str) -> int:
    if not indices:
        raise PolicyError(f"{what} not found")
    if len(indices) > 1:
        raise PolicyError(f"{what} is defined {len(indices)} times (ambiguous)")
    return indices[0]


def replace_body(source: str, op: ReplaceBody) -> str:
    module = parse(source, op.file)
    new_body, footer = _parse_body(op.body)
    signature = _parse_signature(op.signature) if op.signature else None

    def rebuild(func: cst.FunctionDef) -> cst.FunctionDef:
        block = func.body
        if not isinstance(block, cst.IndentedBlock):
            raise PolicyError(f"{op.function} is a one-line function; give its full body")
        changes: dict[str, Any] = {"body": block.with_changes(body=new_body, footer=footer)}
        if signature is not None:
            changes.update(params=signature.params, returns=signature.returns)
        return func.with_changes(**changes)

    owner, _, method = op.function.rpartition(".")
    if not owner:
        index = _one(_functions(module.body, op.function), f"function {op.function!r} in {op.file}")
        return _swap(module, index, rebuild(module.body[index])).code  # type: ignore[arg-type]
    classes = [i for i, s in enumerate(module.body) if m.matches(s, m.ClassDef(name=m.Name(owner)))]
    c_index = _one(classes, f"class {owner!r} in {op.file}")
    cls = module.body[c_index]
    assert isinstance(cls, cst.ClassDef) and isinstance(cls.body, cst.IndentedBlock)
    f_index = _one(_functions(cls.body.body, method), f"method {op.function!r} in {op.file}")
    methods = list(cls.body.body)
    methods[f_index] = rebuild(methods[f_index])  # type: ignore[arg-type]
    return _swap(module, c_index, cls.with_changes(body=cls.body.with_changes(body=methods))).code


def _swap(module: cst.Module, index: int, node: cst.BaseStatement) -> cst.Module:
    if node.deep_equals(module.body[index]):
        return module
    return module.with_changes(body=[*module.body[:index], node, *module.body[index + 1 :]])


class _BlankLines(cst.CSTTransformer):
    """Blank lines moved into an indented block must stay empty (no trailing whitespace)."""

    def leave_EmptyLine(self, original: cst.EmptyLine, updated: cst.EmptyLine) -> cst.EmptyLine:
        return updated if updated.comment else updated.with_changes(indent=False, whitespace=cst.SimpleWhitespace(""))


def _parse_body(body: str) -> tuple[Sequence[cst.BaseStatement], Sequence[cst.EmptyLine]]:
    """The new body's statements (its leading comments kept) and its trailing comment lines."""
    try:
        parsed = cst.parse_module(textwrap.dedent(body).strip("\n") + "\n")
    except cst.ParserSyntaxError as exc:
        raise PolicyError(f"the new body does not parse: {exc.message} (line {exc.raw_line})") from None
    if not parsed.body:
        raise PolicyError("the new body is empty")
    parsed = parsed.visit(_BlankLines())
    first = parsed.body[0].with_changes(leading_lines=[*parsed.header, *parsed.body[0].leading_lines])
    footer = [line for line in parsed.footer if line.comment]
    return [first, *parsed.body[1:]], footer


def _parse_signature(signature: str) -> cst.FunctionDef:
    try:
        parsed = cst.parse_statement(f"def _{signature.strip()}:\n    pass\n")
    except cst.ParserSyntaxError as exc:
        raise PolicyError(f"the new signature does not parse: {exc.message}") from None
    assert isinstance(parsed, cst.FunctionDef)
    return parsed


def add_function(source: str, op: AddFunction) -> str:
    module = parse(source, op.file)
    new = parse(textwrap.dedent(op.source).strip("\n") + "\n", "the new function")
    if len(new.body) != 1 or not isinstance(new.body[0], cst.FunctionDef):
        raise PolicyError("'source' must hold exactly one function definition")
    func = new.body[0]
    existing = _functions(module.body, func.name.value)
    if existing:
        same = module.body[existing[0]].with_changes(leading_lines=()).deep_equals(func.with_changes(leading_lines=()))
        if len(existing) == 1 and same:
            return source
        raise PolicyError(f"function {func.name.value!r} already exists in {op.file} (use replace_body)")
    blank = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
    # Comments above the new 'def' are the module header of the parsed source: keep them.
    func = func.with_changes(leading_lines=(blank, blank, *new.header, *func.leading_lines))
    return module.with_changes(body=[*module.body, func]).code


def remove_function(source: str, op: RemoveFunction) -> str:
    """Remove a top-level function. A missing target is refused (issue 4), so a remove plan
    applied a second time is refused too, having changed nothing."""
    module = parse(source, op.file)
    indices = _functions(module.body, op.name)
    if not indices:
        raise PolicyError(f"function {op.name} not found in {op.file}")
    index = _one(indices, f"function {op.name!r} in {op.file}")
    # The function's own leading lines (its comments) go with it; the next statement keeps its own spacing.
    return module.with_changes(body=[*module.body[:index], *module.body[index + 1 :]]).code


def references(source: str, name: str) -> int:
    """How many times ``name`` is used (as a name or attribute) outside its own definition."""
    module = cst.parse_module(source)
    names = m.findall(module, m.Name(name))
    defs = m.findall(module, m.FunctionDef(name=m.Name(name)) | m.ClassDef(name=m.Name(name)))
    # A definition's own name is a Name node too; attribute uses (x.name) count, conservatively.
    return len(names) - len(defs)


# --- imports ---------------------------------------------------------------------------


def add_import(source: str, op: AddImport) -> str:
    module = parse(source, op.file)
    if op.names:
        return _add_from_import(module, op).code
    alias = cst.AsName(name=cst.Name(op.alias)) if op.alias is not None else None
    wanted = cst.Import(names=[cst.ImportAlias(name=_dotted(op.module), asname=alias)])
    for stmt in module.body:
        if m.matches(stmt, m.SimpleStatementLine(body=[m.Import()])):
            for a in stmt.body[0].names:  # type: ignore[attr-defined]
                if a.deep_equals(wanted.names[0].with_changes(comma=a.comma)):
                    return source
    return _insert_import(module, cst.SimpleStatementLine(body=[wanted])).code


def _add_from_import(module: cst.Module, op: AddImport) -> cst.Module:
    target = m.ImportFrom(module=_dotted_matcher(op.module), relative=[])
    for i, stmt in enumerate(module.body):
        if m.matches(stmt, m.SimpleStatementLine(body=[target])):
            node = stmt.body[0]  # type: ignore[attr-defined]
            if isinstance(node.names, cst.ImportStar):
                return module
            have = [cst.Module([]).code_for_node(a).rstrip(", ") for a in node.names]
            missing = [n for n in op.names if n not in have]
            if not missing:
                return module
            names = sorted(have + missing, key=lambda n: (not n[:1].isupper(), n.lower()))
            new = node.with_changes(names=_aliases(names))
            return module.with_changes(body=[*module.body[:i], stmt.with_changes(body=[new]), *module.body[i + 1 :]])
    new = cst.ImportFrom(module=_dotted(op.module), names=_aliases(sorted(op.names)))
    return _insert_import(module, cst.SimpleStatementLine(body=[new]))


def _aliases(names: list[str]) -> list[cst.ImportAlias]:
    out = [cst.ImportAlias(name=cst.Name(n)) for n in names]
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [a.with_changes(comma=comma) for a in out[:-1]] + out[-1:]


def _dotted(name: str) -> cst.Name | cst.Attribute:
    expr = cst.parse_expression(name)
    assert isinstance(expr, cst.Name | cst.Attribute)
    return expr


def _dotted_matcher(name: str) -> m.BaseMatcherNode:
    head, _, last = name.rpartition(".")
    return m.Attribute(value=_dotted_matcher(head), attr=m.Name(last)) if head else m.Name(last)


def _group(stmt: cst.BaseStatement) -> int:
    """isort section of an import statement: 0 standard library, 1 third party, 2 this project."""
    node = stmt.body[0]  # type: ignore[attr-defined]
    target = node.module if isinstance(node, cst.ImportFrom) else node.names[0].name
    root = cst.Module([]).code_for_node(target).split(".")[0] if target is not None else ""
    if root in ("sorte", "strategies"):
        return 2
    return 0 if root in sys.stdlib_module_names else 1


def _insert_import(module: cst.Module, stmt: cst.SimpleStatementLine) -> cst.Module:
    """Into its isort section: after the section's last import, or as a new section in order."""
    body = list(module.body)
    blank = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
    is_import = m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()])
    imports = [(i, _group(s)) for i, s in enumerate(body) if m.matches(s, is_import)]
    group = _group(stmt)
    same = [i for i, g in imports if g == group]
    later = [i for i, g in imports if g > group]
    if same:
        at = same[-1] + 1
    elif later:
        at = later[0]
        stmt = stmt.with_changes(leading_lines=body[at].leading_lines)
        body[at] = body[at].with_changes(leading_lines=(blank,))
    elif imports:
        at = imports[-1][0] + 1
        stmt = stmt.with_changes(leading_lines=(blank,))
    else:
        docstring = m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString() | m.ConcatenatedString())])
        at = 1 if body and m.matches(body[0], docstring) else 0
        stmt = stmt.with_changes(leading_lines=(blank,) if at else ())
    if not same and at < len(body) and not body[at].leading_lines:
        body[at] = body[at].with_changes(leading_lines=(blank,))
    body.insert(at, stmt)
    return module.with_changes(body=body)


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
