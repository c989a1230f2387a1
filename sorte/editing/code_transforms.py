"""LibCST transforms of code: a function's or method's body and signature replaced, a function
added or removed, an import added in its isort section. As in ``sorte.editing.transforms``, only
the target node is rebuilt and an operation already applied returns the source unchanged."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import libcst as cst
import libcst.matchers as m

from sorte.editing.plan import AddFunction, AddImport, RemoveFunction, ReplaceBody
from sorte.editing.policy import PolicyError
from sorte.editing.transforms import parse


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
        node = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
        if isinstance(node, cst.Import) and m.matches(stmt, m.SimpleStatementLine(body=[m.Import()])):
            for a in node.names:
                if a.deep_equals(wanted.names[0].with_changes(comma=a.comma)):
                    return source
    return _insert_import(module, cst.SimpleStatementLine(body=[wanted])).code


def _add_from_import(module: cst.Module, op: AddImport) -> cst.Module:
    target = m.ImportFrom(module=_dotted_matcher(op.module), relative=[])
    for i, stmt in enumerate(module.body):
        node = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
        if isinstance(node, cst.ImportFrom) and m.matches(stmt, m.SimpleStatementLine(body=[target])):
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


def _dotted_matcher(name: str) -> m.Attribute | m.Name:
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
