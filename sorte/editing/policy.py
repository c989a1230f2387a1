"""Guards the editor enforces in code, not in prompts: which paths may change, which code may
be written, and a hash manifest proving nothing outside the editable area changed."""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import string
import unicodedata
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn

EDITABLE = "strategies"
STRATEGY_FILE = re.compile(r"strategies/[A-Za-z_][A-Za-z0-9_]*\.py")
NEW_TEST_FILE = re.compile(r"tests/strategies/test_[A-Za-z0-9_]*\.py")
NEW_TESTS = "tests/strategies"
PROTECTED = ("tests", "guardian", "bench", "sorte", "commander", "sandbox", "knowledge")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
#: The trusted sorte package whose sources name what tests and strategies may use from it.
SORTE_DIR = Path(__file__).resolve().parent.parent

# --- code policy --------------------------------------------------------------------
#
# Design: an allow-list. Code the agent writes may reference only (1) names it binds itself
# (assignments, defs, arguments, comprehension and match targets, its own imports), (2) a
# short list of harmless builtins, and (3) listed symbols of listed modules: explicit lists
# of numpy / pandas / math / statistics names and the public functions of sorte.indicators
# (new tests also get pytest, hypothesis and a few public sorte runtime modules). Attribute
# access on values is an allow-list too: ndarray / Series methods, the Ohlcv fields, the
# names the module's own PARAMS literal declares and the names its own classes define. On
# top of the lists, whatever builds a name from text is refused outright: getattr & co.,
# str.format / format_map / % formatting, subscripts keyed by built strings, and any dunder
# text (identifiers, attributes, strings, bytes, f-string parts, folded "a" + "b" constants).
# A module alias may only be used as ``np.<symbol>``, never as a value, so a module object
# never reaches code that could walk it. This is defence in depth: the boundary is the OS
# sandbox the code runs in (principle 8), never this list.

#: Builtins any strategy or new test may use: pure values, containers and arithmetic. Nothing
#: that reflects (getattr, type, vars, super, object), evaluates, imports, opens or prints.
SAFE_BUILTINS = frozenset(
    {
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
        "int", "isinstance", "iter", "len", "list", "map", "max", "min", "next", "pow", "property",
        "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
        "tuple", "zip",
        # exceptions a strategy may raise or a test may expect
        "ArithmeticError", "AssertionError", "Exception", "FloatingPointError", "IndexError", "KeyError",
        "LookupError", "NotImplementedError", "OverflowError", "RuntimeError", "StopIteration", "TypeError",
        "ValueError", "ZeroDivisionError",
    }
)  # fmt: skip
#: Every other builtin name (getattr, open, type, object, super, vars, chr, format, ...) is
#: refused wherever it appears, even as a local name: a parameter called ``open`` in one
#: function must not make a bare ``open`` elsewhere look like a local.
UNSAFE_BUILTINS = frozenset(dir(__import__("builtins"))) - SAFE_BUILTINS

NUMPY = frozenset(
    {
        # construction and shape
        "array", "asarray", "asanyarray", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
        "full_like", "empty_like", "arange", "linspace", "logspace", "geomspace", "eye", "identity", "diag",
        "tril", "triu", "meshgrid", "reshape", "ravel", "transpose", "squeeze", "expand_dims", "atleast_1d",
        "broadcast_to", "concatenate", "stack", "hstack", "vstack", "column_stack", "append", "insert",
        "delete", "repeat", "tile", "roll", "flip", "split", "copy", "shape", "ndim", "size", "isscalar",
        # selection and logic
        "where", "select", "clip", "take", "nonzero", "flatnonzero", "argwhere", "count_nonzero",
        "searchsorted", "digitize", "sort", "argsort", "lexsort", "unique", "any", "all", "logical_and",
        "logical_or", "logical_not", "logical_xor", "greater", "greater_equal", "less", "less_equal", "equal",
        "not_equal", "isnan", "isinf", "isfinite", "isclose", "allclose", "array_equal", "nan_to_num",
        "issubdtype", "errstate",
        # arithmetic and functions
        "abs", "absolute", "sign", "sqrt", "cbrt", "square", "exp", "expm1", "log", "log1p", "log2", "log10",
        "power", "tanh", "sinh", "cosh", "arctanh", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
        "arctan2", "hypot", "maximum", "minimum", "fmax", "fmin", "add", "subtract", "multiply", "divide",
        "true_divide", "floor_divide", "mod", "remainder", "fmod", "negative", "reciprocal", "round", "around",
        "floor", "ceil", "trunc", "rint", "fix", "interp", "convolve", "correlate", "dot", "vdot", "inner",
        "outer", "matmul", "cross", "einsum", "trace",
        # reductions and statistics
        "sum", "nansum", "cumsum", "nancumsum", "prod", "nanprod", "cumprod", "mean", "nanmean", "median",
        "nanmedian", "std", "nanstd", "var", "nanvar", "min", "max", "nanmin", "nanmax", "amin", "amax",
        "argmin", "argmax", "nanargmin", "nanargmax", "ptp", "percentile", "nanpercentile", "quantile",
        "nanquantile", "average", "diff", "ediff1d", "gradient", "corrcoef", "cov", "histogram", "bincount",
        # types and constants
        "ndarray", "dtype", "number", "floating", "integer", "signedinteger", "bool_", "float64", "float32",
        "int64", "int32", "int8", "nan", "inf", "pi", "e", "newaxis",
        # submodules, each with its own list below
        "linalg", "fft", "random", "ma", "typing",
    }
)  # fmt: skip
NUMPY_LINALG = frozenset(
    {"norm", "inv", "pinv", "solve", "lstsq", "det", "eig", "eigh", "eigvals", "svd", "qr", "cholesky",
     "matrix_rank", "LinAlgError"}
)  # fmt: skip
NUMPY_FFT = frozenset({"fft", "ifft", "rfft", "irfft", "fftfreq", "rfftfreq"})
NUMPY_RANDOM = frozenset({"default_rng"})
NUMPY_MA = frozenset({"masked_invalid", "masked_where", "masked_array", "getdata", "filled"})
NUMPY_TYPING = frozenset({"NDArray", "ArrayLike"})
PANDAS = frozenset(
    {"Series", "DataFrame", "Index", "RangeIndex", "DatetimeIndex", "Timestamp", "Timedelta", "NaT", "NA", "isna",
     "isnull", "notna", "notnull", "concat", "to_datetime", "to_numeric", "to_timedelta", "date_range", "cut",
     "qcut"}
)  # fmt: skip
MATH = frozenset(
    {"sqrt", "exp", "expm1", "log", "log2", "log10", "log1p", "pow", "fabs", "floor", "ceil", "trunc", "isnan",
     "isinf", "isfinite", "isclose", "pi", "e", "inf", "nan", "tau", "tanh", "sinh", "cosh", "atanh", "atan",
     "atan2", "sin", "cos", "tan", "asin", "acos", "hypot", "copysign", "fsum", "prod", "comb", "perm",
     "factorial", "gcd", "lcm", "erf", "erfc", "gamma", "lgamma", "degrees", "radians", "modf", "frexp", "ldexp",
     "fmod", "remainder", "dist"}
)  # fmt: skip
STATISTICS = frozenset(
    {"mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low", "median_high", "mode",
     "multimode", "pstdev", "pvariance", "stdev", "variance", "quantiles", "correlation", "covariance",
     "linear_regression", "NormalDist", "StatisticsError"}
)  # fmt: skip
#: What one strategy module may take from another (``from strategies.momentum import PARAMS``):
#: the contract's names, never whatever else the module happens to bind (its numpy, say).
STRATEGY_EXPORTS = frozenset(
    {"PARAMS", "ALIASES", "lookback", "features", "decide", "STAGES", "MIN_CONFIDENCE", "PROMPTS"}
)

#: Modules strategy code may import, with the symbols it may use from each.
STRATEGY_MODULES: dict[str, frozenset[str]] = {
    "numpy": NUMPY,
    "numpy.linalg": NUMPY_LINALG,
    "numpy.fft": NUMPY_FFT,
    "numpy.random": NUMPY_RANDOM,
    "numpy.ma": NUMPY_MA,
    "numpy.typing": NUMPY_TYPING,
    "pandas": PANDAS,
    "math": MATH,
    "statistics": STATISTICS,
    "sorte.indicators": frozenset(),  # its public functions, read from its source (_sorte_public)
}
STRATEGY_IMPORTS = frozenset(STRATEGY_MODULES) | {"__future__"}
STRATEGY_PACKAGES = ("strategies",)

#: New tests may also use these (pytest's and hypothesis' API, numpy's assertions).
TEST_MODULES: dict[str, frozenset[str]] = {
    "numpy": NUMPY | {"testing"},
    "numpy.testing": frozenset(
        {"assert_allclose", "assert_array_equal", "assert_array_almost_equal", "assert_almost_equal", "assert_equal"}
    ),
    "pytest": frozenset({"approx", "raises", "fixture", "mark", "param", "skip", "fail", "warns"}),
    "pytest.mark": frozenset({"parametrize", "skip", "skipif", "xfail", "slow", "filterwarnings"}),
    "hypothesis": frozenset({"given", "settings", "assume", "example", "note", "HealthCheck", "strategies"}),
    "hypothesis.strategies": frozenset(
        {
            "integers",
            "floats",
            "booleans",
            "lists",
            "tuples",
            "sampled_from",
            "just",
            "one_of",
            "composite",
            "text",
            "none",
            "dictionaries",
            "data",
            "fixed_dictionaries",
        }
    ),  # fmt: skip
}
#: Public sorte modules a new test may import: their public top-level names, read from the
#: trusted source, except where listed explicitly (the settings hold secrets: only these).
TEST_SORTE_MODULES: dict[str, frozenset[str] | None] = {
    "sorte.indicators": None,
    "sorte.errors": None,
    "sorte.config": frozenset({"REPO_ROOT", "BrokerSettings", "RiskSettings"}),
    "sorte.runtime.models": None,
    "sorte.runtime.strategy": None,
    # the one way a test reaches strategy code: a confined worker (the harness refuses the rest)
    "sorte.runtime.strategy_host": frozenset({"StrategyHost", "RemoteStrategy"}),
    "sorte.runtime.cascade": None,
    "sorte.runtime.backtest": None,
    "sorte.runtime.data": None,
    "sorte.runtime.demo": None,
    "sorte.runtime.risk": None,
}
#: Public names of those modules a test still may not use (they read files by path, run coroutines).
TEST_SORTE_EXCLUDED = frozenset({"load_bars", "run_sync", "symbol_from_path"})
TEST_IMPORTS = STRATEGY_IMPORTS | frozenset(TEST_MODULES) | frozenset(TEST_SORTE_MODULES)
TEST_PACKAGES = ("strategies", "sorte")

#: Attributes that may be read on values: ndarray / Series / rolling-window methods, the
#: Ohlcv fields, Params.as_dict, ufunc methods, random-generator draws and plain container
#: and text methods. None of them reflects, formats or touches a file.
VALUE_ATTRS = frozenset(
    {
        # ndarray
        "T", "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "copy", "cumprod", "cumsum",
        "diagonal", "dot", "dtype", "fill", "flatten", "imag", "item", "max", "mean", "min", "ndim", "nonzero",
        "prod", "ravel", "real", "repeat", "reshape", "round", "searchsorted", "shape", "size", "sort",
        "squeeze", "std", "sum", "take", "tolist", "trace", "transpose", "var",
        # Series / DataFrame and their rolling / ewm windows
        "abs", "at", "iat", "iloc", "loc", "bfill", "ffill", "fillna", "between", "columns", "corr", "count",
        "cov", "cummax", "cummin", "diff", "dropna", "empty", "ewm", "expanding", "head", "tail", "idxmax",
        "idxmin", "index", "isin", "isna", "notna", "kurt", "median", "mask", "where", "nlargest", "nsmallest",
        "nunique", "pct_change", "quantile", "rank", "rolling", "shift", "skew", "to_numpy", "to_list",
        "unique", "value_counts", "values",
        # ufuncs (np.maximum.accumulate) and numpy random generators
        "accumulate", "reduce", "outer", "normal", "uniform", "integers", "random", "standard_normal",
        "choice", "permutation", "lognormal", "exponential", "poisson",
        # statistics.NormalDist
        "stdev", "variance", "cdf", "inv_cdf", "pdf", "zscore",
        # dict, list, str
        "get", "items", "keys", "append", "extend", "insert", "pop", "strip", "lstrip", "rstrip", "lower",
        "upper", "startswith", "endswith", "split", "splitlines",
        # Ohlcv bars and Params
        "ts", "open", "high", "low", "close", "volume", "interval_s", "window", "as_dict",
    }
)  # fmt: skip
#: What tests also read: pytest.raises' value, hypothesis draws and strategies, pydantic
#: dumps, read-only path queries (tmp_path, REPO_ROOT).
TEST_VALUE_ATTRS = frozenset(
    {"value", "draw", "map", "filter", "model_dump", "isidentifier", "is_dir", "is_file", "exists", "name", "stem",
     "suffix", "parent"}
)  # fmt: skip
#: Never an attribute (read or defined by the module's own classes), whatever the lists above
#: say: reflection, frames, text-built access, the system and file I/O.
DENIED_ATTRS = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code",
        "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next", "func_globals",
        "co_code", "mro", "ctypes", "base", "data", "format", "format_map", "attrgetter", "methodcaller",
        "itemgetter", "getattr", "setattr", "delattr", "hasattr", "vars", "globals", "locals", "eval", "exec",
        "compile", "system", "popen", "environ", "modules", "import_module", "getfixturevalue", "pluginmanager",
        "config", "monkeypatch", "tofile", "dump", "dumps", "tobytes", "save", "load", "write", "open_memmap",
        "memmap", "fromfile", "join", "replace", "module", "host", "model_config",
    }
)  # fmt: skip
#: Never a name, not even a local one: the string-driven accessors of operator and importlib.
DENIED_NAMES = UNSAFE_BUILTINS | {"attrgetter", "methodcaller", "itemgetter", "import_module"}
IO_PREFIXES = ("read_", "to_csv", "to_pickle", "to_parquet", "to_json", "to_excel", "to_sql", "to_hdf",
               "to_feather", "to_html", "to_string", "to_latex", "to_markdown", "to_clipboard", "to_stata",
               "to_xml", "to_orc", "write", "save", "load", "dump", "exec", "spawn", "fork", "posix_spawn",
               "unlink", "rmdir", "mkdir", "rename", "chmod", "chown", "symlink", "touch")  # fmt: skip
#: Methods that look an item up by key: the key may not be text built at run time.
KEYED_METHODS = frozenset({"get", "pop", "setdefault"})


class PolicyError(Exception):
    """A guard failed; the editor turns it into EditRefused naming the operation."""


def check_path(rel: str, root: Path, *, new_test: bool = False) -> PurePosixPath:
    """The repo-relative path if it may be edited: under strategies/, or a new tests/strategies/ file."""
    if not rel or "\\" in rel or "\x00" in rel:
        raise PolicyError(f"invalid path {rel!r}")
    path = PurePosixPath(rel)
    if path.is_absolute() or rel.startswith("~"):
        raise PolicyError(f"absolute path {rel!r} is not allowed")
    if ".." in path.parts:
        raise PolicyError(f"path {rel!r} contains '..'")
    area = NEW_TESTS if new_test else EDITABLE
    if path.parts[: len(PurePosixPath(area).parts)] != PurePosixPath(area).parts or path.suffix != ".py":
        raise PolicyError(f"path {rel!r} is outside {area}/ (only .py files there may be {_verb(new_test)})")
    # A symlink anywhere on the way could point out of the tree: compare the resolved paths.
    real_root = root.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(real_root / area):
        raise PolicyError(f"path {rel!r} resolves outside {area}/ (symlink)")
    if (root / path).is_symlink():
        raise PolicyError(f"path {rel!r} is a symlink")
    if new_test and not path.name.startswith("test_"):
        raise PolicyError(f"test file name {path.name!r} must start with 'test_'")
    # The guardian accepts exactly these names (guardian/changes.py): directly in the folder, a module name.
    if not (NEW_TEST_FILE if new_test else STRATEGY_FILE).fullmatch(rel):
        shape = "tests/strategies/test_<name>.py" if new_test else "strategies/<module>.py"
        raise PolicyError(f"path {rel!r} must be {shape} (no subfolder, a Python identifier as the name)")
    return path


def _verb(new_test: bool) -> str:
    return "added" if new_test else "edited"


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
            reason = _denied_attr(name)
            if reason:
                self.fail(line, f"'{name}' may not be defined as an attribute ({reason})")
        self.attrs = VALUE_ATTRS | frozenset(self.own_attrs) | (_test_attrs() if self.test else frozenset())
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
            if not isinstance(node.ctx, ast.Load) and _is_self(node.value):
                self.own_attrs.setdefault(node.attr, node.lineno)
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
            self._bind_text(node)

    def _bind_text(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) -> None:
        # Names holding text built at run time ("sys" + "tem") may not key an item lookup either.
        value = node.value
        built = value is not None and (_builds_text(value) or (isinstance(node, ast.AugAssign) and _is_text(value)))
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
            if _dunder(alias.name):
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
            return TEST_SORTE_MODULES[module] or _sorte_public(module, functions_only=False)
        if module == "sorte.indicators":
            return _sorte_public(module, functions_only=True)
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
            self.fail(node, f"'{_shown(node)}': an item key built from text is not allowed")
        elif isinstance(node, ast.keyword) and node.arg is not None:
            self._identifier(node, node.arg)
        elif isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                self._value_attr(node, attr, f"{_shown(node.cls)}({attr}=...)")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                self._identifier(node, name)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            self._identifier(node, node.name)

    def _identifier(self, node: ast.AST, name: str) -> None:
        if _dunder(name):
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
        shown = _shown(node)
        if _dunder(node.attr):
            self.fail(node, f"'{shown}' is dunder text")
        base = self._module_path(node.value)
        if base is None:
            if not isinstance(node.ctx, ast.Load) and not _is_self(node.value):
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
        if _dunder(attr):
            self.fail(node, f"'{shown}' is dunder text")
        if attr not in self.attrs or _denied_attr(attr):
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
        if _dunder_text(value):
            self.fail(node, f"dunder text in a string ({_clip(value)!r})")
        field = _field_access(value)
        if field is not None:
            self.fail(node, f"format field {{{field}}} reads an attribute or item ({_clip(value)!r})")

    def _check_binop(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Mod) and _is_text(node.left):
            self.fail(node, "'%' formatting of text is not allowed (use an f-string)")
        folded = _fold(node)
        if folded is not None:
            self._check_text(ast.Constant(folded, lineno=node.lineno), folded)

    def _check_call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or self._module_path(func.value) is not None:
            return
        if func.attr == "open":
            self.fail(node, f"'{_shown(func)}(...)' is not allowed (no file I/O)")
        if func.attr in KEYED_METHODS and node.args and self._text_key(node.args[0]):
            self.fail(node, f"'{_shown(node)}': an item key built from text is not allowed")

    def _text_key(self, key: ast.expr) -> bool:
        return _builds_text(key) or (isinstance(key, ast.Name) and key.id in self.text_names)


def _position(node: ast.AST) -> tuple[int, int, int, int]:
    # Reading order, innermost first: 'bytes' is named before 'bytes(...).decode'.
    return tuple(getattr(node, key, None) or 0 for key in ("lineno", "col_offset", "end_lineno", "end_col_offset"))


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _dunder(name: str) -> bool:
    return unicodedata.normalize("NFKC", name).startswith("__")


def _dunder_text(text: str) -> bool:
    return "__" in unicodedata.normalize("NFKC", text)


def _denied_attr(attr: str) -> str | None:
    """Why ``attr`` may never be read or defined as an attribute, or None."""
    if _dunder(attr):
        return "dunder text"
    if attr in DENIED_ATTRS or attr.startswith(IO_PREFIXES):
        return "reflection, the system or file I/O"
    return None


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shown(node: ast.expr) -> str:
    return _clip(ast.unparse(node))


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes))


def _fold(node: ast.expr) -> str | None:
    """The text of a constant expression built with + and * ("_" * 2 + "class"), or None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if not isinstance(node, ast.BinOp):
        return None
    if isinstance(node.op, ast.Add):
        left, right = _fold(node.left), _fold(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node.op, ast.Mult):
        for text_side, count_side in ((node.left, node.right), (node.right, node.left)):
            text = _fold(text_side)
            count = count_side.value if isinstance(count_side, ast.Constant) else None
            if text is not None and isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= 64:
                return text * count
    return None


def _builds_text(key: ast.expr) -> bool:
    """Whether a subscript key is text built at run time (f-string, concatenation, str())."""
    for node in ast.walk(key):
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.BinOp) and (_is_text(node.left) or _is_text(node.right)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"str", "repr"}:
            return True
    return False


def _field_access(text: str) -> str | None:
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


def _trusted_source(module: str) -> ast.Module:
    """The parsed source of a sorte module; a module that is gone offers nothing (an empty tree)."""
    try:
        return ast.parse((SORTE_DIR.parent / (module.replace(".", "/") + ".py")).read_text())
    except (OSError, SyntaxError):
        return ast.Module(body=[], type_ignores=[])


@functools.cache
def _sorte_public(module: str, *, functions_only: bool) -> frozenset[str]:
    """Public top-level names of a trusted sorte module, read from its source (not imported)."""
    tree = _trusted_source(module)
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not functions_only or not isinstance(stmt, ast.ClassDef):
                names.add(stmt.name)
        elif not functions_only and isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(n for n in names if not n.startswith("_")) - TEST_SORTE_EXCLUDED


@functools.cache
def _test_attrs() -> frozenset[str]:
    """Attributes a new test may read: the test list plus the public members of the classes
    of the sorte modules it may import (read from their trusted source)."""
    names: set[str] = set(TEST_VALUE_ATTRS)
    for module, explicit in TEST_SORTE_MODULES.items():
        if explicit is not None:
            continue
        tree = _trusted_source(module)
        for cls in (s for s in tree.body if isinstance(s, ast.ClassDef) and not s.name.startswith("_")):
            for node in ast.walk(cls):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node in cls.body:
                    names.add(node.name)
                elif isinstance(node, ast.AnnAssign | ast.Assign) and node in cls.body:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
                elif isinstance(node, ast.Attribute) and _is_self(node.value) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
    return frozenset(n for n in names if not n.startswith("_") and _denied_attr(n) is None)


def build_manifest(root: Path) -> dict[str, str]:
    """SHA-256 of every protected file (tests, guardian, bench, sorte, commander, sandbox, knowledge)."""
    manifest: dict[str, str] = {}
    for top in PROTECTED:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(root).parts) and path.suffix != ".pyc":
                manifest[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def check_manifest(root: Path, before: dict[str, str], allowed_new: AbstractSet[str] = frozenset()) -> None:
    """Raise PolicyError if a protected file changed, vanished or appeared (except allowed new tests)."""
    after = build_manifest(root)
    changed = sorted(p for p, h in before.items() if after.get(p) != h)
    added = sorted(p for p in after.keys() - before.keys() if p not in allowed_new)
    if changed or added:
        raise PolicyError(f"protected files changed: {', '.join((changed + added)[:5])}")
