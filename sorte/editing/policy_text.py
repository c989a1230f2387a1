"""Text checks of the code policy: dunder text, constant text folded from pieces, item keys
built from text at run time, and ``str.format`` fields that walk their values."""

from __future__ import annotations

import ast
import string
import unicodedata


def is_dunder(name: str) -> bool:
    return unicodedata.normalize("NFKC", name).startswith("__")


def has_dunder(text: str) -> bool:
    return "__" in unicodedata.normalize("NFKC", text)


def clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def source_of(node: ast.expr) -> str:
    return clip(ast.unparse(node))


def is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes))


def fold_text(node: ast.expr) -> str | None:
    """The text of a constant expression built with + and * ("_" * 2 + "class"), or None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if not isinstance(node, ast.BinOp):
        return None
    if isinstance(node.op, ast.Add):
        left, right = fold_text(node.left), fold_text(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node.op, ast.Mult):
        for text_side, count_side in ((node.left, node.right), (node.right, node.left)):
            text = fold_text(text_side)
            count = count_side.value if isinstance(count_side, ast.Constant) else None
            if text is not None and isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 64:
                return text * count
    return None


def builds_text(key: ast.expr) -> bool:
    """Whether a subscript key is text built at run time (f-string, concatenation, str())."""
    for node in ast.walk(key):
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp) and (is_text(node.left) or is_text(node.right)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"str", "repr"}:
            return True
    return False


def format_field_access(text: str) -> str | None:
    """A str.format field of ``text`` that reads an attribute or an item ("{0.real}"), or None.
    Trusted code formats prompt templates: a field must never walk the values it is given."""
    if "{" not in text:
        return None
    pending = [text]
    while pending:
        try:
            parsed = list(string.Formatter().parse(pending.pop()))
        except ValueError:
            continue  # not a template (unbalanced braces): str.format would refuse it too
        for _literal, field, spec, _conversion in parsed:
            if field and ("." in field or "[" in field):
                return field
            if spec and "{" in spec:
                pending.append(spec)
    return None
