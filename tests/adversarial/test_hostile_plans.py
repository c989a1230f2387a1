"""Hostile edit plans through the editor: each one is refused (the allow-list names what it
tried) or contained (the sandboxed validator refuses it), writes nothing and leaks nothing.

Most cases are plans whose code the policy refuses before anything runs (milliseconds):
they go through ``apply_plan`` on a committed repository, and each asserts the refusal, the
name it gave, that the repository (files, refs, index, worktrees) is unchanged and that the
canary secret set in this process's environment appears in no output. Generated variants
(hypothesis) cover encodings of forbidden names, string-built attribute paths, split format
fields, reflective modules, dunder text, builtins aliasing and class/lambda/decorator
tricks. A few cases let code past the policy on purpose, to show that the sandboxed
validator contains it, and a few go through ``sorte edit --plan ... --dry-run``.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import sorte.editing.apply as apply_module
from sorte.editing import EditRefused, apply_plan, load_plan, sandboxed
from sorte.editing.allowlist import UNSAFE_BUILTINS
from sorte.editing.code_policy import check_code
from sorte.editing.policy import PolicyError
from tests.adversarial.canary import CANARY, assert_no_canary, set_canary
from tests.editing.gitrepo import git, make_repo

MOM = "strategies/momentum.py"
NEW_TEST = "tests/strategies/test_hostile.py"
#: Names the hostile lines may use, bound in the edited function, so that a refusal is about
#: what the line tries and never about an unknown name.
PRELUDE = "x = f = g = d = obj = p\n"
#: Quick examples: each one is a plan through the editor on the shared repository.
GENERATED = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


@pytest.fixture(autouse=True)
def canary(monkeypatch: pytest.MonkeyPatch) -> str:
    return set_canary(monkeypatch)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One committed repository for the module: every refusal must leave it exactly as it was."""
    return make_repo(tmp_path_factory.mktemp("hostile"))


def repo_state(repo: Path) -> dict[str, object]:
    return {
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "status": git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "files": {
            p.relative_to(repo).as_posix(): p.read_bytes()
            for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts
        },
    }


def strategy_op(snippet: str) -> dict:
    """The hostile lines as the new body of momentum's lookback()."""
    return {
        "op": "replace_body",
        "file": MOM,
        "function": "lookback",
        "body": PRELUDE + snippet + "\nreturn max(p.fast, p.slow) + 1",
    }


def test_op(source: str) -> dict:
    return {"op": "add_test", "path": NEW_TEST, "source": source}


test_op.__test__ = False  # a plan helper, not a pytest test


def refused(repo: Path, op: dict, expected: str) -> EditRefused:
    """Apply a one-operation plan; it must be refused with ``expected`` (a regex) in the
    reason, leave the repository as it was and leak no canary."""
    before = repo_state(repo)
    with pytest.raises(EditRefused) as info:
        apply_plan(load_plan(json.dumps({"summary": "hostile", "ops": [op]})), repo)
    reason = info.value.reason
    assert re.search(expected, reason), reason
    assert info.value.op_index == 0
    assert repo_state(repo) == before
    assert_no_canary(str(info.value), reason)
    return info.value


def refused_by_policy(repo: Path, op: dict, expected: str) -> None:
    """Refused by the allow-list itself: the reason names the file and line it refused."""
    where = re.escape(op.get("file") or op.get("path") or "strategies/prompts.py")
    refused(repo, op, f"{where}:\\d+: .*(?:{expected})")


# --- encodings of forbidden names ------------------------------------------------------

ENCODINGS = {
    "fullwidth_eval": ("y = ｅｖａｌ('1')", "'eval'"),
    "math_bold_getattr": ("y = 𝐠𝐞𝐭𝐚𝐭𝐭𝐫(x, 'fast')", "'getattr'"),
    "modifier_letters_eval": ("y = ᵉᵛᵃˡ('1')", "'eval'"),
    "mixed_script_open": ("y = ｏpen('f', 'w')", "'open'"),
    "fullwidth_attribute": ("y = x.ｍｒｏ()", "x.mro"),
    "fullwidth_inner_underscores": ("y = x.a＿＿class＿＿", "x.a__class__"),
    "hex_escapes": ('y = d["\\x5f\\x5fbuiltins\\x5f\\x5f"]', "dunder text"),
    "unicode_escapes": ('y = d["\\u005f\\u005fimport\\u005f\\u005f"]', "dunder text"),
    "named_escapes": ('y = d["\\N{LOW LINE}\\N{LOW LINE}class\\N{LOW LINE}\\N{LOW LINE}"]', "dunder text"),
    "octal_escapes": ('y = d["\\137\\137globals\\137\\137"]', "dunder text"),
    "bytes_escapes": ('y = b"\\x5f\\x5fclass\\x5f\\x5f"', "dunder text"),
    "fullwidth_in_string": ('y = "＿＿class＿＿"', "dunder text"),
    "chr_built": ('y = chr(95) * 2 + "class" + chr(95) * 2', "'chr'"),
    "bytes_built": ("y = bytes([95, 95]).decode()", "'bytes'"),
    "join_built": ('y = "".join(["_", "_", "class", "_", "_"])', "join"),
    "repeat_built": ('y = "_" * 2 + "class" + "_" * 2', "dunder text"),
    "implicit_concat": ('y = "\\x5f" "\\x5fclass__"', "dunder text"),
    "encode_decode": ('y = "\\\\x5f".encode().decode("unicode_escape")', "encode"),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_encoded_forbidden_names_are_refused(repo: Path, name: str) -> None:
    snippet, expected = ENCODINGS[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


def test_a_fullwidth_leading_underscore_does_not_even_parse(repo: Path) -> None:
    refused(repo, strategy_op("y = x.＿＿class＿＿"), "not a valid identifier|invalid character")


FORBIDDEN_IDENTIFIERS = ["eval", "exec", "getattr", "setattr", "open", "compile", "vars", "globals", "breakpoint"]


def _fullwidth(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


def _bold(ch: str) -> str:
    return chr(0x1D41A + ord(ch) - ord("a")) if "a" <= ch <= "z" else ch


@st.composite
def disguised_identifier(draw: st.DrawFn) -> tuple[str, str]:
    """A forbidden builtin's name with each letter kept, fullwidth or mathematical bold."""
    name = draw(st.sampled_from(FORBIDDEN_IDENTIFIERS))
    styles = draw(st.lists(st.sampled_from([str, _fullwidth, _bold]), min_size=len(name), max_size=len(name)))
    return name, "".join(style(ch) for style, ch in zip(styles, name, strict=True))


@GENERATED
@given(disguised_identifier(), st.sampled_from(["y = {}(x)", "y = {}", "y = [{}][0]", "h = lambda: {}"]))
def test_generated_look_alike_names_are_refused(repo: Path, disguised: tuple[str, str], form: str) -> None:
    name, spelled = disguised
    refused_by_policy(repo, strategy_op(form.format(spelled)), f"'{name}' is not an allowed name")


def _escaped(ch: str, style: int) -> str:
    return [ch, f"\\x{ord(ch):02x}", f"\\u{ord(ch):04x}", f"\\{ord(ch):03o}", f"\\N{{{_char_name(ch)}}}"][style]


def _char_name(ch: str) -> str:
    import unicodedata

    return unicodedata.name(ch)


@GENERATED
@given(
    st.sampled_from(["__class__", "__globals__", "__builtins__", "__import__", "__subclasses__", "__dict__"]),
    st.lists(st.integers(0, 4), min_size=16, max_size=16),
    st.sampled_from(['y = d["{}"]', 'y = "{}"', 'y = b"{}"', 'y = d.get("{}")']),
)
def test_generated_escaped_dunder_strings_are_refused(repo: Path, dunder: str, styles: list[int], form: str) -> None:
    if form.startswith("y = b"):
        styles = [min(s, 1) for s in styles]  # bytes literals know only \x escapes
    text = "".join(_escaped(ch, styles[i % len(styles)]) for i, ch in enumerate(dunder))
    refused_by_policy(repo, strategy_op(form.replace("{}", text)), "dunder text")


# --- attribute and item names built from strings ----------------------------------------

STRING_PATHS = {
    "getattr_concat": ('y = getattr(x, "sys" + "tem")', "'getattr'"),
    "attrgetter": ('import operator\ny = operator.attrgetter("f_globals")(x)', "'operator'"),
    "methodcaller": ('from operator import methodcaller\ny = methodcaller("system", "id")(x)', "'operator'"),
    "itemgetter": ('from operator import itemgetter\ny = itemgetter("os")(d)', "'operator'"),
    "reduce_getattr": ('import functools\ny = functools.reduce(getattr, ["a"], x)', "'functools'"),
    "vars_item": ('y = vars(x)["system"]', "'vars'"),
    "fstring_key": ("y = d[f\"{'sys'}tem\"]", "item key built from text"),
    "concat_key": ('y = d["sys" + "tem"]', "item key built from text"),
    "str_call_key": ('y = d[str(1) + "x"]', "item key built from text"),
    "variable_key": ('k = "sys" + "tem"\ny = d[k]', "item key built from text"),
    "augmented_key": ('k = "sys"\nk += "tem"\ny = d[k]', "item key built from text"),
    "walrus_key": ('y = d[(k := "o" + "s")]', "item key built from text"),
    "get_built_key": ('y = d.get("sys" + "tem")', "item key built from text"),
    "pop_built_key": ('k = f"{x}"\ny = d.pop(k)', "item key built from text"),
    "module_dict": ('import numpy as np\ny = np.__dict__["load"]', "dunder"),
    "getattribute": ('y = x.__getattribute__("system")', "dunder"),
    "type_getattribute": ('y = type(x).__getattribute__(x, "a")', "'type'"),
    "object_getattribute": ('y = object.__getattribute__(x, "a")', "'object'"),
    "setattr_literal": ('setattr(x, "fast", 1)', "'setattr'"),
    "globals_item": ('y = globals()["o" + "s"]', "'globals'"),
    "inspect_static": ('import inspect\ny = inspect.getattr_static(x, "a")', "'inspect'"),
}


@pytest.mark.parametrize("name", sorted(STRING_PATHS))
def test_string_built_attribute_paths_are_refused(repo: Path, name: str) -> None:
    snippet, expected = STRING_PATHS[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


@st.composite
def split_literal(draw: st.DrawFn, text: str) -> str:
    """``text`` as 1 to 4 string literals joined with +, cut at random places."""
    cuts = sorted(draw(st.sets(st.integers(1, len(text) - 1), max_size=3)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return " + ".join(json.dumps(piece) for piece in pieces)


@GENERATED
@given(
    st.sampled_from(["system", "f_globals", "modules", "popen", "gi_frame", "environ", "tofile"]).flatmap(
        split_literal
    ),
    st.sampled_from(
        [
            "y = getattr(x, {})",
            "y = d[{}]",
            "y = d.get({})",
            "k = {}\ny = d[k]",
            "import operator\ny = operator.attrgetter({})(x)",
            "y = vars(x)[{}]",
        ]
    ),
)
def test_generated_string_built_paths_are_refused(repo: Path, built: str, form: str) -> None:
    source = form.replace("{}", built)
    if " + " not in built and form in ("y = d[{}]", "y = d.get({})", "k = {}\ny = d[k]"):
        # One plain literal is a constant key ({"system": 1}["system"]), not a built name: the
        # point here is the built ones.
        built = f"{built} + ''"
        source = form.replace("{}", built)
    refused_by_policy(
        repo, strategy_op(source), "getattr|operator|vars|item key built from text|not an allowed attribute"
    )


# --- split format fields ----------------------------------------------------------------

FORMATS = {
    "implicit_concat": ('y = "{0.__cl" "ass__}".format(x)', r"\.format|dunder"),
    "plus_concat": ('y = ("{0.__" + "class__}").format(x)', r"\.format|dunder"),
    "four_pieces": ('t = "{0._" + "_cla" + "ss_" + "_}"\ny = t.format(x)', "dunder text"),
    "format_map": ('y = "{x.real}".format_map(d)', "format_map|reads an attribute"),
    "percent": ('y = "%(fast)s" % d', "'%' formatting"),
    "str_format": ('y = str.format("{0.real}", x)', r"str\.format|reads an attribute"),
    "format_builtin": ('y = format(x, "")', "'format'"),
    "fstring_dunder": ('y = f"{x.__class__}"', "dunder"),
    "item_field": ('y = "{0[__builtins__]}".format(g)', r"dunder|\.format"),
    "nested_spec": ('y = "{0:{1.real}}"', "reads an attribute"),
    "attribute_field": ('t = "{0.real}"', "reads an attribute"),
    "dunder_field": ('t = "{close.__class__}"', "dunder text"),
    "folded_field": ('t = "{0." + "imag}"', "reads an attribute"),
    "escaped_braces": ('t = "{{}}{0.imag}"', "reads an attribute"),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_split_format_fields_are_refused(repo: Path, name: str) -> None:
    snippet, expected = FORMATS[name]
    refused_by_policy(repo, strategy_op(snippet), expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [("Close {close.__class__}", "dunder|placeholder"), ("Close {close.real} for {symbol}", "attribute|placeholder")],
)
def test_prompt_templates_cannot_walk_the_values_they_are_given(repo: Path, template: str, expected: str) -> None:
    refused(repo, {"op": "edit_prompt", "prompt": "risk", "template": template}, expected)


@GENERATED
@given(
    st.sampled_from(["{0.__class__}", "{0.__globals__}", "{x.real}", "{0[__builtins__]}", "{0.imag}"]).flatmap(
        split_literal
    ),
    st.sampled_from(["t = {}", "y = ({}).format(x)", "t = {}\ny = t.format_map(d)", "y = ({}) % d"]),
)
def test_generated_split_format_fields_are_refused(repo: Path, built: str, form: str) -> None:
    refused_by_policy(repo, strategy_op(form.replace("{}", built)), "dunder|reads an attribute|format|'%' formatting")


# --- reflective and system modules ------------------------------------------------------

MODULES = {
    "typing": ("import typing\ny = typing.get_type_hints", "'typing'"),
    "typing_from": ("from typing import Any", "'typing'"),
    "operator": ("import operator", "'operator'"),
    "functools": ("import functools", "'functools'"),
    "inspect": ("import inspect", "'inspect'"),
    "types": ("import types", "'types'"),
    "gc": ("import gc", "'gc'"),
    "codecs": ("import codecs", "'codecs'"),
    "importlib": ("import importlib as il", "'importlib'"),
    "builtins": ("from builtins import open as o", "'builtins'"),
    "sys": ("import sys", "'sys'"),
    "os_path": ("import os.path", "'os.path'"),
    "ctypes": ("import ctypes", "'ctypes'"),
    "pickle": ("import pickle", "'pickle'"),
    "numpy_ctypeslib": ("import numpy.ctypeslib", "'numpy.ctypeslib'"),
    "numpy_lib": ("import numpy as np\ny = np.lib", "'np.lib'"),
    "numpy_core": ("from numpy import core", "'numpy.core'"),
    "numpy_testing_in_strategy": ("import numpy as np\ny = np.testing", "'np.testing'"),
    "pandas_io": ("import pandas as pd\ny = pd.io", "'pd.io'"),
    "statistics_random": ("import statistics\ny = statistics.random", "'statistics.random'"),
    "sorte_config": ("import sorte.config", "'sorte.config'"),
    "indicators_numpy": ("from sorte.indicators import np", "'sorte.indicators.np'"),
    "sibling_numpy": ("from strategies.momentum import np", "'strategies.momentum.np'"),
    "module_as_value": ("import numpy as np\nm = np", "module 'np'"),
    "module_in_list": ("import numpy\ny = [numpy][0]", "module 'numpy'"),
    "relative": ("from . import momentum", "relative import"),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_reflective_modules_are_refused(repo: Path, name: str) -> None:
    snippet, expected = MODULES[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


TEST_FILES = {
    "importorskip": ('import pytest\n\n\ndef test_x():\n    pytest.importorskip("os")\n', "'pytest.importorskip'"),
    "monkeypatch": ('def test_x(monkeypatch):\n    monkeypatch.setattr("os.system", None)\n', "monkeypatch.setattr"),
    "getfixturevalue": ('def test_x(request):\n    request.getfixturevalue("tmp_path")\n', "getfixturevalue"),
    "private_pytest": ("from _pytest.monkeypatch import MonkeyPatch\n", "'_pytest.monkeypatch'"),
    "settings_secrets": ("from sorte.config import Settings\n", "'sorte.config.Settings'"),
    "load_bars": ("from sorte.runtime.data import load_bars\n", "'sorte.runtime.data.load_bars'"),
    "ledger": ("from sorte.runtime.ledger import Ledger\n", "'sorte.runtime.ledger'"),
    "typing_in_test": ("from typing import cast\n", "'typing'"),
    "getattr_in_test": ("def test_x(tmp_path):\n    assert getattr(tmp_path, 'name')\n", "'getattr'"),
    "open_in_test": ("def test_x(tmp_path):\n    tmp_path.open('w')\n", "no file I/O"),
    "write_in_test": ("def test_x(tmp_path):\n    tmp_path.write_text('x')\n", "write_text"),
    "dunder_in_test": ("def test_x():\n    assert test_x.__globals__\n", "dunder"),
}


@pytest.mark.parametrize("name", sorted(TEST_FILES))
def test_new_tests_get_the_same_rules(repo: Path, name: str) -> None:
    source, expected = TEST_FILES[name]
    refused_by_policy(repo, test_op(source), re.escape(expected))


REFLECTIVE = ["typing", "operator", "functools", "inspect", "types", "gc", "codecs", "importlib", "builtins", "sys",
              "os", "ctypes", "pickle", "marshal", "copyreg", "weakref", "subprocess", "socket", "io", "pathlib",
              "tempfile", "shutil", "runpy", "pkgutil", "ast", "dis", "code", "threading", "signal", "sorte.editing",
              "sorte.runtime.ledger", "guardian", "commander", "sandbox"]  # fmt: skip


@GENERATED
@given(
    st.sampled_from(REFLECTIVE),
    st.sampled_from(["import {m}", "import {m} as z", "from {m} import thing", "import {m}.sub"]),
    st.booleans(),
)
def test_generated_module_imports_are_refused(repo: Path, module: str, form: str, as_test: bool) -> None:
    line = form.format(m=module)
    if as_test:
        refused_by_policy(repo, test_op(line + "\n"), "is not allowed in test code|is not an allowed symbol")
    else:
        refused_by_policy(repo, strategy_op(line), "is not allowed in strategy code|is not an allowed symbol")


# --- dunder text ------------------------------------------------------------------------

DUNDER = {
    "class_attr": ("y = x.__class__", "__class__"),
    "dict_attr": ("y = x.__dict__", "__dict__"),
    "builtins_name": ("y = __builtins__", "__builtins__"),
    "module_name": ("y = __name__", "__name__"),
    "spec_name": ("y = __spec__", "__spec__"),
    "slots": ("class A:\n    __slots__ = ()", "__slots__"),
    "init_subclass": ("class A:\n    def __init_subclass__(cls):\n        return 1", "__init_subclass__"),
    "kwarg": ("y = dict(__x=1)", "__x"),
    "string": ('y = "__class__"', "dunder text"),
    "bytes": ('y = b"__globals__"', "dunder text"),
    "fstring_text": ('y = f"{x}__{x}"', "dunder text"),
    "mangled_def": ("def __helper():\n    return 1", "__helper"),
    "match_class": ("match x:\n    case int(__class__=c):\n        y = c", "__class__"),
    "len_dunder": ("y = x.__len__()", "__len__"),
    "subclasses": ("y = [].__class__.__base__.__subclasses__()", "__class__"),
    "docstring": ('"""uses __import__ internally"""', "dunder text"),
    "global_dunder": ("global __builtins__", "__builtins__"),
}


@pytest.mark.parametrize("name", sorted(DUNDER))
def test_dunder_text_is_refused(repo: Path, name: str) -> None:
    snippet, expected = DUNDER[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


@GENERATED
@given(
    st.sampled_from(["__class__", "__globals__", "__dict__", "__code__", "__init__", "__reduce_ex__", "__mro__"]),
    st.sampled_from(
        [
            "y = x.{}",
            "y = {}",
            'y = "{}"',
            'y = b"{}"',
            "y = dict({}=1)",
            "def {}():\n    return 1",
            "class A:\n    {} = 1",
            'y = f"{{x}}{}"',
            "y = [v for v in {}]",
        ]
    ),
)
def test_generated_dunder_text_is_refused(repo: Path, dunder: str, form: str) -> None:
    refused_by_policy(repo, strategy_op(form.replace("{}", dunder)), "dunder")


# --- builtins aliasing ------------------------------------------------------------------

BUILTINS = {
    "eval_alias": ("e = eval", "'eval'"),
    "getattr_in_list": ("y = [getattr][0]", "'getattr'"),
    "open_in_dict": ('y = {"o": open}["o"]', "'open'"),
    "open_default": ("def h(fn=open):\n    return fn", "'open'"),
    "exec_lambda": ("y = lambda: exec", "'exec'"),
    "type_call": ("y = type(x)", "'type'"),
    "object_name": ("y = object", "'object'"),
    "super_call": ("y = super()", "'super'"),
    "breakpoint_call": ("breakpoint()", "'breakpoint'"),
    "print_call": ("print(x)", "'print'"),
    "memoryview_call": ('y = memoryview(b"")', "'memoryview'"),
    "bytearray_call": ("y = bytearray(2)", "'bytearray'"),
    "parameter_named_open": ("def h(open):\n    return open", "'open'"),
    "global_getattr": ("global getattr", "'getattr'"),
    "exit_name": ("y = exit", "'exit'"),
    "compile_name": ("y = compile", "'compile'"),
    "classmethod_name": ("y = classmethod", "'classmethod'"),
    "issubclass_call": ("y = issubclass(int, int)", "'issubclass'"),
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_aliasing_is_refused(repo: Path, name: str) -> None:
    snippet, expected = BUILTINS[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


UNSAFE = sorted(n for n in UNSAFE_BUILTINS if not keyword.iskeyword(n) and not n.startswith("__"))


@GENERATED
@given(
    st.sampled_from(UNSAFE),
    st.sampled_from(
        ["y = {}", "y = [{}]", "def h(v={}):\n    return v", "y = lambda: {}", "y = {}(x)", "def h({}):\n    return 1"]
    ),
)
def test_generated_builtin_aliases_are_refused(repo: Path, name: str, form: str) -> None:
    refused_by_policy(repo, strategy_op(form.replace("{}", name)), f"'{name}' is not an allowed name")


# --- class, lambda and decorator tricks ---------------------------------------------------

TRICKS = {
    "metaclass": ("class A(metaclass=x):\n    pass", "metaclass"),
    "type_base": ("class A(type):\n    pass", "'type'"),
    "eval_decorator": ("@eval\ndef h():\n    return 1", "'eval'"),
    "lambda_decorator": ("@(lambda fn: open)\ndef h():\n    return 1", "'open'"),
    "init_method": ("class A:\n    def __init__(self):\n        self.v = 1", "__init__"),
    "getattr_method": ("class A:\n    def __getattr__(self, n):\n        return n", "__getattr__"),
    "generator_frame": ("gen = (i for i in [1])\ny = gen.gi_frame", "gi_frame"),
    "lambda_generator_frame": ("y = (lambda: (yield))().gi_frame.f_back", "gi_frame"),
    "traceback": ("try:\n    y = 1 / 0\nexcept ZeroDivisionError as e:\n    y = e.__traceback__", "__traceback__"),
    "with_traceback": ("try:\n    y = 1\nexcept ValueError as e:\n    y = e.with_traceback", "with_traceback"),
    "function_attribute": ("def h():\n    return 1\n\nh.system = 1", "h.system"),
    "patch_numpy": ("import numpy as np\nnp.where = abs", "np.where"),
    "method_named_gi_frame": ("class A:\n    def gi_frame(self):\n        return 1", "gi_frame"),
    "method_named_format": ("class A:\n    def format(self):\n        return 1", "format"),
    "self_f_globals": ("class A:\n    def m(self):\n        self.f_globals = 1", "f_globals"),
    "property_getattr": ("y = property(getattr)", "'getattr'"),
    "staticmethod_func": ("@staticmethod\ndef h():\n    return 1\n\ny = h.__func__", "__func__"),
    "exception_args": ("class A(Exception):\n    pass\n\ny = A().args", "args"),
    "import_default": ("y = (lambda fn=__import__: fn)()", "__import__"),
    "mro_call": ("class A:\n    v = 1\n\ny = A.mro()", "mro"),
}


@pytest.mark.parametrize("name", sorted(TRICKS))
def test_class_lambda_and_decorator_tricks_are_refused(repo: Path, name: str) -> None:
    snippet, expected = TRICKS[name]
    refused_by_policy(repo, strategy_op(snippet), re.escape(expected))


WEAPONS = ["eval", "getattr", "open", "type", "object", "x.__class__", "np.load", "vars", "x.gi_frame", "np.ctypeslib"]


@GENERATED
@given(
    st.sampled_from(WEAPONS),
    st.sampled_from(
        [
            "@{}\ndef h():\n    return 1",
            "class A({}):\n    pass",
            "y = (lambda v={}: v)()",
            "class A:\n    v = {}",
            "class A:\n    def m(self):\n        return {}",
            "y = [v for v in [{}]]",
        ]
    ),
)
def test_generated_class_lambda_decorator_tricks_are_refused(repo: Path, weapon: str, form: str) -> None:
    snippet = "import numpy as np\n" + form.replace("{}", weapon)
    refused_by_policy(repo, strategy_op(snippet), "not an allowed|dunder")


# --- what stays allowed -----------------------------------------------------------------


def test_the_shipped_strategies_and_an_ordinary_edit_still_pass(repo: Path) -> None:
    for path in sorted((repo / "strategies").glob("*.py")):
        check_code(path.read_text(), f"strategies/{path.name}")
    body = "with np.errstate(invalid='ignore'):\n    n = max(p.fast, p.slow)\nreturn int(n) + 1"
    op = {"op": "replace_body", "file": MOM, "function": "lookback", "body": body}
    result = apply_plan(load_plan(json.dumps({"summary": "ok", "ops": [op]})), repo, write=False)
    assert set(result.changed) == {MOM}


def test_refusals_name_the_symbol_and_the_line() -> None:
    source = "import numpy as np\n\n\ndef f():\n    return np.fromfile('x')\n"
    with pytest.raises(PolicyError, match=r"^strategies/x\.py:5: 'np\.fromfile' is not an allowed symbol$"):
        check_code(source, "strategies/x.py")


# --- containment: code that got past the policy stays in the sandbox ---------------------


@pytest.fixture()
def no_policy(monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """Simulate a policy bypass: the editor's code check lets everything through. The warm
    validator is restarted, so that it starts from a process holding the canary."""
    monkeypatch.setattr(apply_module, "check_code", lambda source, filename: None)
    sandboxed.shutdown()


def _containment_op(code: str) -> dict:
    return {"op": "replace_body", "file": MOM, "function": "lookback", "body": code + "\nreturn 1"}


CONTAINED = {
    "environment": ("import os\nraise ValueError('env=' + repr(dict(os.environ)))", "env=", True),
    "proc_environ": (
        "import os\nfound = []\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
        "            found.append(open('/proc/' + pid + '/environ', 'rb').read())\n"
        "        except OSError as e:\n            found.append(str(e).encode())\n"
        "raise ValueError(b'|'.join(found)[:1500])",
        # without namespaces the audit hook refuses the read; with them the validator's root has no /proc
        r"reading /proc/\d+/environ is not allowed|No such file or directory: '/proc'",
        False,
    ),
    "write_tmp": ("open({marker!r}, 'w').write('x')", "writing is not allowed", False),
    "disarm_then_write": (
        "import sys\nm = sys.modules['__main__']\nm._ARMED = [False]\nm._READ_ROOTS.append('/')\n"
        "open({marker!r}, 'w').write('x')",
        "writing is not allowed",
        False,
    ),
}


@pytest.mark.parametrize("name", sorted(CONTAINED))
def test_code_past_the_policy_is_contained(repo: Path, tmp_path: Path, no_policy, name: str) -> None:
    code, expected, shows_env = CONTAINED[name]
    marker = tmp_path / "marker"
    error = refused(repo, _containment_op(code.replace("{marker!r}", repr(str(marker)))), expected)
    assert "does not validate" in error.reason
    assert not marker.exists()
    if shows_env:  # the environment plan code saw was printed into the reason: no secret in it
        assert "PATH" in error.reason and CANARY not in error.reason


# --- through the command line: sorte edit --plan ... --dry-run ----------------------------


@pytest.fixture()
def cli(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # no stray ./sorte.yaml or .env
    monkeypatch.setenv("SORTE_STRATEGIES_DIR", str(repo / "strategies"))
    monkeypatch.setenv("SORTE_DATA_DIR", str(tmp_path / "var"))

    def run(op: dict):
        from sorte.cli.main import app

        path = tmp_path / "plan.json"
        path.write_text(json.dumps({"summary": "hostile", "ops": [op]}))
        return CliRunner().invoke(app, ["edit", "--plan", str(path), "--dry-run"], catch_exceptions=False)

    return run


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (strategy_op("y = ｇｅｔａｔｔｒ(x, 'fast')"), "'getattr' is not an allowed name"),
        (strategy_op('y = ("{0.__" + "class__}").format(x)'), "format"),
        (test_op("import operator\n"), "'operator' is not allowed in test code"),
    ],
)
def test_cli_dry_run_refuses_hostile_plans(repo: Path, tmp_path: Path, cli, op: dict, expected: str) -> None:
    before = repo_state(repo)
    result = cli(op)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert repo_state(repo) == before
    worktrees = tmp_path / "var" / "worktrees"
    assert not worktrees.exists() or not [p for p in worktrees.iterdir() if p.is_dir()]
    assert_no_canary(result.output, tmp_path)


def test_cli_dry_run_contains_code_past_the_policy(repo: Path, tmp_path: Path, cli, no_policy) -> None:
    before = repo_state(repo)
    result = cli(_containment_op("import os\nraise ValueError('env=' + repr(dict(os.environ)))"))
    assert result.exit_code == 2, result.output
    assert "does not validate" in result.output and "env=" in result.output
    assert repo_state(repo) == before
    assert_no_canary(result.output, tmp_path)
