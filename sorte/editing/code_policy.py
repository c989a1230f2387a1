"""The code policy's checker: every name, attribute, import and text of a module the editor
would write, against the allow-list (``sorte.editing.allowlist``). A refusal reads
``<filename>:<line>: <why>`` and names the symbol."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import NoReturn

from sorte.editing.allowlist import (
    DENIED_NAMES,
    KEYED_METHODS,
    SAFE_BUILTINS,
    STRATEGY_EXPORTS,
    STRATEGY_IMPORTS,
    STRATEGY_MODULES,
    TEST_IMPORTS,
    TEST_MODULES,
    TEST_SORTE_MODULES,
    VALUE_ATTRS,
    denied_attr,
    is_self,
    sorte_public,
    test_attrs,
)
from sorte.editing.policy import EDITABLE, PolicyError
from sorte.editing.policy_text import (
    builds_text,
    clip,
    fold_text,
    format_field_access,
    has_dunder,
    is_dunder,
    is_text,
    source_of,
)


def check_code(source: str, filename: str) -> ast.Module:
    """Parse ``source`` and refuse whatever the allow-list does not name; returns the tree.

    ``filename`` (repo-relative) picks the rules: ``strategies/...`` gets the strategy lists,
    anything else (new tests) the test lists. A refusal reads ``<filename>:<line>: <why>``
    and names the symbol, e.g. ``strategies/x.py:12: 'np.fromfile' is not an allowed symbol``."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise PolicyError(f"{filename} would not parse: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:  # a NUL byte, say
        raise PolicyError(f"{filename} would not parse: {exc}") from None
    _Checker(filename, test_code=not filename.startswith(f"{EDITABLE}/")).run(tree)
    return tree


@dataclass(frozen=True)
class _Binding:
    """What an import bound a name to: a module (usable only as ``name.<symbol>``) or a symbol."""

    path: str
    module: bool


class _Checker:
    """One pass binds every name the module defines or imports, a second checks every node."""

    def __init__(self, filename: str, *, test_code: bool) -> None:
        self.filename = filename
        self.test = test_code
        self.where = "in test code" if test_code else "in strategy code"
        self.imports: dict[str, _Binding] = {}
        self.defined: dict[str, int] = {}
        self.own_attrs: dict[str, int] = {}
        self.chain_bases: set[int] = set()
        self.text_names: set[str] = set()
        self.attrs: frozenset[str] = frozenset()

    def fail(self, node: ast.AST | int, message: str) -> NoReturn:
        line = node if isinstance(node, int) else getattr(node, "lineno", "?")
        raise PolicyError(f"{self.filename}:{line}: {message}")

    def run(self, tree: ast.Module) -> None:
        nodes = sorted(ast.walk(tree), key=_position)
        for node in nodes:
            self._bind(node)
        self._bind_params(tree)
        for name in self.imports:
            if name in self.defined:
                self.fail(
                    self.defined[name], f"'{name}' is imported and also assigned: an imported name is never rebound"
                )
        for name, line in self.own_attrs.items():
            reason = denied_attr(name)
            if reason:
                self.fail(line, f"'{name}' may not be defined as an attribute ({reason})")
        self.attrs = VALUE_ATTRS | frozenset(self.own_attrs) | (test_attrs() if self.test else frozenset())
        for node in nodes:
            self._check(node)

    # --- binding -------------------------------------------------------------------

    def _bind(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            self._bind_import(node)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            self.defined.setdefault(node.id, node.lineno)
        elif isinstance(node, ast.arg):
            self.defined.setdefault(node.arg, node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self.defined.setdefault(node.name, node.lineno)
        elif isinstance(node, ast.ClassDef):
            self.defined.setdefault(node.name, node.lineno)
            self._bind_class(node)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            self.defined.setdefault(node.name, node.lineno)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            self.defined.setdefault(node.rest, node.lineno)
        elif isinstance(node, ast.Attribute):
            self.chain_bases.add(id(node.value))
            if not isinstance(node.ctx, ast.Load) and is_self(node.value):
                self.own_attrs.setdefault(node.attr, node.lineno)
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
            self._bind_text(node)

    def _bind_text(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) -> None:
        # Names holding text built at run time ("sys" + "tem") may not key an item lookup either.
        value = node.value
        built = value is not None and (builds_text(value) or (isinstance(node, ast.AugAssign) and is_text(value)))
        if not built:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            self.text_names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def _bind_class(self, node: ast.ClassDef) -> None:
        # The class's own members may be read on its instances (obj.method()).
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.own_attrs.setdefault(stmt.name, stmt.lineno)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name):
                    self.own_attrs.setdefault(target.id, stmt.lineno)

    def _bind_params(self, tree: ast.Module) -> None:
        # The parameters the module declares are read as p.<name>.
        for stmt in tree.body:
            if not isinstance(stmt, ast.Assign) or not isinstance(stmt.value, ast.Dict):
                continue
            if [getattr(t, "id", None) for t in stmt.targets] == ["PARAMS"]:
                for key in stmt.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isidentifier():
                        self.own_attrs.setdefault(key.value, stmt.lineno)

    def _bind_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not self._is_module(alias.name):
                    self._refuse_import(node, alias.name)
                name = alias.asname or alias.name.split(".")[0]
                self._bind_name(node, name, alias.asname and alias.name or name, module=True)
            return
        if node.level:
            self.fail(node, f"relative import is not allowed {self.where}")
        module = node.module or ""
        if module == "__future__":
            bad = [a.name for a in node.names if a.name != "annotations"]
            if bad:
                self.fail(node, f"'from __future__ import {bad[0]}' is not allowed")
            return
        known = self._is_module(module)
        for alias in node.names:
            if alias.name == "*":
                self.fail(node, f"'from {module} import *' hides what is imported")
            full = f"{module}.{alias.name}"
            if is_dunder(alias.name):
                self.fail(node, f"'{full}' is dunder text")
            if self._is_module(full):
                self._bind_name(node, alias.asname or alias.name, full, module=True)
            elif known and alias.name in self._symbols(module):
                self._bind_name(node, alias.asname or alias.name, full, module=False)
            elif known:
                self.fail(node, f"'{full}' is not an allowed symbol")
            else:
                self._refuse_import(node, module)

    def _refuse_import(self, node: ast.AST, module: str) -> NoReturn:
        allowed = TEST_IMPORTS if self.test else STRATEGY_IMPORTS
        self.fail(node, f"import of {module!r} is not allowed {self.where} (allowed: {', '.join(sorted(allowed))})")

    def _bind_name(self, node: ast.AST, name: str, path: str, *, module: bool) -> None:
        self._identifier(node, name)
        binding = _Binding(path, module)
        old = self.imports.get(name)
        if old is not None and old != binding:
            self.fail(node, f"'{name}' is imported twice as different things ({old.path}, {path})")
        self.imports[name] = binding

    def _is_module(self, path: str) -> bool:
        if path in STRATEGY_MODULES or (self.test and (path in TEST_MODULES or path in TEST_SORTE_MODULES)):
            return True
        parts = path.split(".")
        return len(parts) == 2 and parts[0] == "strategies" and parts[1].isidentifier() and parts[1][0] != "_"

    def _symbols(self, module: str) -> frozenset[str]:
        if module.startswith("strategies."):
            return STRATEGY_EXPORTS
        if self.test and module in TEST_MODULES:
            return TEST_MODULES[module]
        if self.test and module in TEST_SORTE_MODULES:
            return TEST_SORTE_MODULES[module] or sorte_public(module, functions_only=False)
        if module == "sorte.indicators":
            return sorte_public(module, functions_only=True)
        return STRATEGY_MODULES.get(module, frozenset())

    # --- checking --------------------------------------------------------------------

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self._check_name(node)
        elif isinstance(node, ast.Attribute):
            self._check_attribute(node)
        elif isinstance(node, ast.arg):
            self._identifier(node, node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._identifier(node, node.name)
        elif isinstance(node, ast.ClassDef):
            self._check_class(node)
        elif isinstance(node, ast.Constant):
            self._check_text(node, node.value)
        elif isinstance(node, ast.BinOp):
            self._check_binop(node)
        elif isinstance(node, ast.Call):
            self._check_call(node)
        elif isinstance(node, ast.Subscript) and self._text_key(node.slice):
            self.fail(node, f"'{source_of(node)}': an item key built from text is not allowed")
        elif isinstance(node, ast.keyword) and node.arg is not None:
            self._identifier(node, node.arg)
        elif isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                self._value_attr(node, attr, f"{source_of(node.cls)}({attr}=...)")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                self._identifier(node, name)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            self._identifier(node, node.name)

    def _identifier(self, node: ast.AST, name: str) -> None:
        if is_dunder(name):
            self.fail(node, f"'{name}' is dunder text")
        if name in DENIED_NAMES:
            self.fail(node, f"'{name}' is not an allowed name")

    def _check_name(self, node: ast.Name) -> None:
        self._identifier(node, node.id)
        if not isinstance(node.ctx, ast.Load):
            return
        binding = self.imports.get(node.id)
        if binding is not None:
            if binding.module and id(node) not in self.chain_bases:
                self.fail(node, f"module '{node.id}' may only be used as {node.id}.<symbol>, not as a value")
            return
        if node.id not in self.defined and node.id not in SAFE_BUILTINS:
            self.fail(node, f"'{node.id}' is not an allowed name")

    def _module_path(self, node: ast.expr) -> str | None:
        """The module ``node`` names (``np``, ``np.linalg``), or None when it is a value."""
        if isinstance(node, ast.Name):
            binding = self.imports.get(node.id)
            return binding.path if binding is not None and binding.module else None
        if isinstance(node, ast.Attribute):
            base = self._module_path(node.value)
            full = f"{base}.{node.attr}"
            return full if base is not None and self._is_module(full) else None
        return None

    def _check_attribute(self, node: ast.Attribute) -> None:
        shown = source_of(node)
        if is_dunder(node.attr):
            self.fail(node, f"'{shown}' is dunder text")
        base = self._module_path(node.value)
        if base is None:
            if not isinstance(node.ctx, ast.Load) and not is_self(node.value):
                self.fail(node, f"assigning to '{shown}' is not allowed (only to self.<name>)")
            self._value_attr(node, node.attr, shown)
            return
        if not isinstance(node.ctx, ast.Load):
            self.fail(node, f"assigning to '{shown}' is not allowed (a module's attribute)")
        if self._is_module(f"{base}.{node.attr}"):
            if id(node) not in self.chain_bases:
                self.fail(node, f"module '{shown}' may only be used as {shown}.<symbol>, not as a value")
        elif node.attr not in self._symbols(base):
            self.fail(node, f"'{shown}' is not an allowed symbol")

    def _value_attr(self, node: ast.AST, attr: str, shown: str) -> None:
        if is_dunder(attr):
            self.fail(node, f"'{shown}' is dunder text")
        if attr not in self.attrs or denied_attr(attr):
            self.fail(node, f"'{shown}' is not an allowed attribute")

    def _check_class(self, node: ast.ClassDef) -> None:
        self._identifier(node, node.name)
        if node.keywords:
            self.fail(node, f"class {node.name}: keyword {node.keywords[0].arg or '**'!r} is not allowed (metaclass)")

    def _check_text(self, node: ast.Constant, value: object) -> None:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            return
        if has_dunder(value):
            self.fail(node, f"dunder text in a string ({clip(value)!r})")
        field = format_field_access(value)
        if field is not None:
            self.fail(node, f"format field {{{field}}} reads an attribute or item ({clip(value)!r})")

    def _check_binop(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Mod) and is_text(node.left):
            self.fail(node, "'%' formatting of text is not allowed (use an f-string)")
        folded = fold_text(node)
        if folded is not None:
            self._check_text(ast.Constant(folded, lineno=node.lineno), folded)

    def _check_call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or self._module_path(func.value) is not None:
            return
        if func.attr == "open":
            self.fail(node, f"'{source_of(func)}(...)' is not allowed (no file I/O)")
        if func.attr in KEYED_METHODS and node.args and self._text_key(node.args[0]):
            self.fail(node, f"'{source_of(node)}': an item key built from text is not allowed")

    def _text_key(self, key: ast.expr) -> bool:
        return builds_text(key) or (isinstance(key, ast.Name) and key.id in self.text_names)


def _position(node: ast.AST) -> tuple[int, int, int, int]:
    # Reading order, innermost first: 'bytes' is named before 'bytes(...).decode'.
    line, col, end_line, end_col = (getattr(node, key, None) or 0 for key in _POSITION)
    return line, col, end_line, end_col


_POSITION = ("lineno", "col_offset", "end_lineno", "end_col_offset")
