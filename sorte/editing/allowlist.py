"""The vetted lists of the code policy: what strategy code and new tests may name.

Design: an allow-list. Code the agent writes may reference only (1) names it binds itself
(assignments, defs, arguments, comprehension and match targets, its own imports), (2) a
short list of harmless builtins, and (3) listed symbols of listed modules: explicit lists
of numpy / pandas / math / statistics names and the public functions of sorte.indicators
(new tests also get pytest, hypothesis and a few public sorte runtime modules). Attribute
access on values is an allow-list too: ndarray / Series methods, the Ohlcv fields, the
names the module's own PARAMS literal declares and the names its own classes define. On
top of the lists, whatever builds a name from text is refused outright: getattr & co.,
str.format / format_map / % formatting, subscripts keyed by built strings, and any dunder
text (identifiers, attributes, strings, bytes, f-string parts, folded "a" + "b" constants).
A module alias may only be used as ``np.<symbol>``, never as a value, so a module object
never reaches code that could walk it. This is defence in depth: the boundary is the OS
sandbox the code runs in (principle 8), never this list.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from sorte.editing.policy_text import is_dunder

#: The trusted sorte package whose sources name what tests and strategies may use from it.
SORTE_DIR = Path(__file__).resolve().parent.parent

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
    "sorte.runtime.values": None,
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


def is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def denied_attr(attr: str) -> str | None:
    """Why ``attr`` may never be read or defined as an attribute, or None."""
    if is_dunder(attr):
        return "dunder text"
    if attr in DENIED_ATTRS or attr.startswith(IO_PREFIXES):
        return "reflection, the system or file I/O"
    return None


def trusted_source(module: str) -> ast.Module:
    """The parsed source of a sorte module (of a package: the definitions its ``__init__``
    re-exports); a module that is gone offers nothing (an empty tree)."""
    path = SORTE_DIR.parent / module.replace(".", "/")
    try:
        if (path / "__init__.py").is_file():
            return _package_source(module, ast.parse((path / "__init__.py").read_text()))
        return ast.parse(path.with_suffix(".py").read_text())
    except (OSError, SyntaxError):
        return ast.Module(body=[], type_ignores=[])


def _package_source(package: str, init: ast.Module) -> ast.Module:
    """The top-level definitions, in the package's own modules, of the names its ``__init__``
    imports from them: what ``from package import name`` reaches."""
    body: list[ast.stmt] = []
    for stmt in init.body:
        module = stmt.module or "" if isinstance(stmt, ast.ImportFrom) and not stmt.level else ""
        if isinstance(stmt, ast.ImportFrom) and module.startswith(f"{package}."):
            wanted = {alias.name for alias in stmt.names if alias.asname is None}
            body += [s for s in trusted_source(module).body if _defined(s) & wanted]
    return ast.Module(body=body, type_ignores=[])


def _defined(stmt: ast.stmt) -> set[str]:
    """The names a top-level statement defines (functions, classes, plain assignments)."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {stmt.name}
    if isinstance(stmt, ast.Assign | ast.AnnAssign):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


@functools.cache
def sorte_public(module: str, *, functions_only: bool) -> frozenset[str]:
    """Public top-level names of a trusted sorte module, read from its source (not imported)."""
    tree = trusted_source(module)
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
def test_attrs() -> frozenset[str]:
    """Attributes a new test may read: the test list plus the public members of the classes
    of the sorte modules it may import (read from their trusted source)."""
    names: set[str] = set(TEST_VALUE_ATTRS)
    for module, explicit in TEST_SORTE_MODULES.items():
        if explicit is not None:
            continue
        tree = trusted_source(module)
        for cls in (s for s in tree.body if isinstance(s, ast.ClassDef) and not s.name.startswith("_")):
            for node in ast.walk(cls):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node in cls.body:
                    names.add(node.name)
                elif isinstance(node, ast.AnnAssign | ast.Assign) and node in cls.body:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names.update(t.id for t in targets if isinstance(t, ast.Name))
                elif isinstance(node, ast.Attribute) and is_self(node.value) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
    return frozenset(n for n in names if not n.startswith("_") and denied_attr(n) is None)
