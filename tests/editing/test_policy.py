"""Path and code policy, the protected-file manifest, and property-based parameter edits."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sorte.config import REPO_ROOT
from sorte.editing import EditPlan, EditRefused, SetParam, apply_plan
from sorte.editing.code_policy import check_code
from sorte.editing.policy import PolicyError, build_manifest, check_manifest, check_path
from sorte.runtime.strategy import ParamSpec, available_strategies, read_param_specs

STRATEGIES = REPO_ROOT / "strategies"
SPECS = {
    (name, param): spec
    for name in available_strategies(STRATEGIES)
    for param, spec in read_param_specs(STRATEGIES / f"{name}.py").items()
}
NUMERIC = sorted(key for key, spec in SPECS.items() if spec.type in ("int", "float"))


@pytest.mark.parametrize(
    "rel",
    ["strategies/momentum.py", "strategies/new_one.py", "strategies/_template.py"],
)
def test_editable_paths(tree: Path, rel: str) -> None:
    assert check_path(rel, tree).as_posix() == rel


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("sorte/core.py", "outside strategies/"),
        ("tests/test_existing.py", "outside strategies/"),
        ("guardian/rules.yaml", "outside strategies/"),
        ("strategies/../sorte/core.py", "'..'"),
        ("strategies/sub/../../x.py", "'..'"),
        ("/work/main/strategies/momentum.py", "absolute"),
        ("~/strategies/x.py", "absolute"),
        ("strategies\\momentum.py", "invalid"),
        ("", "invalid"),
        ("strategies/data.json", "outside strategies/"),
        ("strategiesx/momentum.py", "outside strategies/"),
    ],
)
def test_refused_paths(tree: Path, rel: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_path(rel, tree)


def test_new_tests_only_under_tests_strategies(tree: Path) -> None:
    assert check_path("tests/strategies/test_a.py", tree, new_test=True)
    with pytest.raises(PolicyError):
        check_path("tests/test_a.py", tree, new_test=True)
    with pytest.raises(PolicyError):
        check_path("strategies/test_a.py", tree, new_test=True)


def test_symlinked_strategies_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "strategies").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PolicyError, match="symlink"):
        check_path("strategies/momentum.py", root)


@pytest.mark.parametrize(
    "source",
    [
        "eval('1')",
        "exec('x = 1')",
        "compile('1', 'f', 'eval')",
        "__import__('os')",
        "import subprocess",
        "from subprocess import run",
        "import socket",
        "import requests",
        "import urllib.request",
        "from http import client",
        "import httpx",
        "import aiohttp",
        "import os\nos.system('ls')",
        "from os import system",
        "import os\nos.popen('ls')",
        "open('x', 'w')",
        "open('x', mode='a')",
        "open('x', 'r+')",
        "open('x', some_mode)",
        "from pathlib import Path\nPath('x').write_text('')",
        "from pathlib import Path\nPath('x').open('w')",
        "x = __builtins__",
        "().__class__.__subclasses__()",
        "import importlib",
        "import ctypes",
        "def f(:\n    pass",
        # reading files or names from text is refused too, even read-only (allow-list: issue 14)
        "open('data.csv')",
        "open('data.csv', 'rb')",
        "x = getattr(p, 'fast', 3)",
        "import typing",
    ],
)
def test_forbidden_code(source: str) -> None:
    with pytest.raises(PolicyError):
        check_code(source, "strategies/x.py")


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nimport math\nfrom sorte.indicators import sma",
        "def evaluate(x):\n    return x",
    ],
)
def test_allowed_code(source: str) -> None:
    check_code(source, "tests/strategies/test_x.py")
    check_code(source, "strategies/x.py")


@pytest.mark.parametrize(
    "source", ["import os", "import os as o", "import os.path", "import sys", "import pickle", "from . import x"]
)
def test_system_modules_and_relative_imports_are_refused_everywhere(source: str) -> None:
    for filename in ("strategies/x.py", "tests/strategies/test_x.py"):
        with pytest.raises(PolicyError, match="is not allowed in (strategy|test) code"):
            check_code(source, filename)


@pytest.mark.parametrize("source", ["import json", "import collections", "import functools", "import scipy.stats"])
def test_strategy_code_imports_only_the_allow_list(source: str) -> None:
    with pytest.raises(PolicyError, match="not allowed in strategy code"):
        check_code(source, "strategies/x.py")


@pytest.mark.parametrize(
    "source",
    [
        "import pytest",
        "from sorte.runtime.cascade import read_cascade",
        "from sorte.runtime.strategy import load_strategy",
    ],
)
def test_tests_may_import_pytest_and_the_project(source: str) -> None:
    check_code(source, "tests/strategies/test_x.py")
    with pytest.raises(PolicyError, match="not allowed in strategy code"):
        check_code(source, "strategies/x.py")


def test_strategy_code_may_import_its_helpers() -> None:
    check_code(
        "from __future__ import annotations\nimport numpy.linalg\nfrom strategies.momentum import PARAMS",
        "strategies/x.py",
    )
    # typing reaches typing.operator (attrgetter & co.): no longer importable (issue 14).
    with pytest.raises(PolicyError, match="import of 'typing' is not allowed"):
        check_code("from typing import Any", "strategies/x.py")


def test_manifest_covers_protected_files_only(tree: Path) -> None:
    manifest = build_manifest(tree)
    assert "tests/test_existing.py" in manifest and "guardian/rules.yaml" in manifest
    assert "bench/data/prices.csv" in manifest and "sorte/core.py" in manifest
    assert not any(rel.startswith("strategies/") for rel in manifest)


@pytest.mark.parametrize("change", ["modify", "delete", "add"])
def test_manifest_detects_changes(tree: Path, change: str) -> None:
    manifest = build_manifest(tree)
    if change == "modify":
        (tree / "sorte/core.py").write_text("VALUE = 2\n")
    elif change == "delete":
        (tree / "tests/test_existing.py").unlink()
    else:
        (tree / "commander/deploy.py").write_text("")
    with pytest.raises(PolicyError, match="protected files changed"):
        check_manifest(tree, manifest)


def test_manifest_allows_the_new_test_file(tree: Path) -> None:
    manifest = build_manifest(tree)
    (tree / "tests/strategies/test_new.py").write_text("")
    check_manifest(tree, manifest, allowed_new={"tests/strategies/test_new.py"})


def test_plan_adding_a_test_passes_the_manifest(tree: Path) -> None:
    source = "def test_new():\n    assert 1\n"
    plan = EditPlan.model_validate(
        {"summary": "t", "ops": [{"op": "add_test", "path": "tests/strategies/test_new.py", "source": source}]}
    )
    apply_plan(plan, tree)
    assert (tree / "tests/strategies/test_new.py").read_text() == source


# --- property-based parameter edits ------------------------------------------------


def _fresh_tree() -> Path:
    root = Path(tempfile.mkdtemp(prefix="sorte-hyp-"))
    shutil.copytree(STRATEGIES, root / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def shared_tree():
    # One tree for all examples: each example restores the file it edited.
    root = _fresh_tree()
    yield root
    shutil.rmtree(root)


def _in_bounds(spec: ParamSpec) -> st.SearchStrategy:
    if spec.type == "int":
        return st.integers(int(math.ceil(spec.min)), int(math.floor(spec.max)))
    return st.floats(spec.min, spec.max, allow_nan=False)


def _out_of_bounds(spec: ParamSpec) -> st.SearchStrategy:
    if spec.type == "int":
        return st.integers(max_value=int(math.ceil(spec.min)) - 1) | st.integers(min_value=int(spec.max) + 1)
    below = st.floats(max_value=spec.min, exclude_max=True, allow_nan=False, allow_infinity=True)
    above = st.floats(min_value=spec.max, exclude_min=True, allow_nan=False, allow_infinity=True)
    return below | above | st.just(math.nan)


@st.composite
def in_bounds_edit(draw: st.DrawFn) -> tuple[str, str, float]:
    key = draw(st.sampled_from(NUMERIC))
    return (*key, draw(_in_bounds(SPECS[key])))


@st.composite
def out_of_bounds_edit(draw: st.DrawFn) -> tuple[str, str, float]:
    key = draw(st.sampled_from(NUMERIC))
    return (*key, draw(_out_of_bounds(SPECS[key])))


@settings(max_examples=60, deadline=None)
@given(in_bounds_edit())
def test_any_in_bounds_value_applies_and_reads_back_exactly(shared_tree: Path, edit: tuple) -> None:
    strategy, name, value = edit
    path = shared_tree / "strategies" / f"{strategy}.py"
    original = path.read_bytes()
    plan = EditPlan(summary="p", ops=[SetParam(strategy=strategy, name=name, value=value)])
    try:
        apply_plan(plan, shared_tree)
        spec = read_param_specs(path)[name]
        assert spec.default == value and type(spec.default) is (int if SPECS[strategy, name].type == "int" else float)
        assert apply_plan(plan, shared_tree).changed == {}
    finally:
        path.write_bytes(original)


@settings(max_examples=60, deadline=None)
@given(out_of_bounds_edit())
def test_any_out_of_bounds_value_is_refused(shared_tree: Path, edit: tuple) -> None:
    strategy, name, value = edit
    path = shared_tree / "strategies" / f"{strategy}.py"
    original = path.read_bytes()
    with pytest.raises(EditRefused) as info:
        apply_plan(EditPlan(summary="p", ops=[SetParam(strategy=strategy, name=name, value=value)]), shared_tree)
    assert info.value.op_index == 0 and info.value.op_kind == "set_param"
    assert path.read_bytes() == original


# --- the allow-list itself -------------------------------------------------------------


def _modules_and_symbols() -> list[tuple[str, str]]:
    from sorte.editing.allowlist import STRATEGY_MODULES, TEST_MODULES

    listed = {**STRATEGY_MODULES, **TEST_MODULES}
    return [(module, symbol) for module, symbols in sorted(listed.items()) for symbol in sorted(symbols)]


def test_every_listed_symbol_exists_and_no_listed_symbol_is_an_unlisted_module() -> None:
    """A typo would allow nothing, and a listed name that is a module would hand code a module
    object to walk: every module a symbol names must itself be listed (with its own symbols)."""
    import importlib
    import types

    from sorte.editing.allowlist import STRATEGY_MODULES, TEST_MODULES

    listed = set(STRATEGY_MODULES) | set(TEST_MODULES)
    for module, symbol in _modules_and_symbols():
        if module == "pytest.mark":
            continue  # a namespace object, not an importable module
        value = getattr(importlib.import_module(module), symbol)
        if isinstance(value, types.ModuleType):
            assert f"{module}.{symbol}" in listed, f"{module}.{symbol} is a module without a list of its own"


def test_indicators_offer_their_public_functions_only() -> None:
    check_code("from sorte.indicators import sma, rsi, clip01", "strategies/x.py")
    for name in ("np", "_window_fold", "annotations"):
        with pytest.raises(PolicyError, match=f"'sorte.indicators.{name}' is not an allowed symbol"):
            check_code(f"from sorte.indicators import {name}", "strategies/x.py")


def test_the_shipped_strategy_tests_pass_the_test_rules_but_for_getattr() -> None:
    """tests/strategies/test_contract.py reads two attributes through getattr(), which the
    allow-list refuses everywhere; everything else in it passes the rules for new tests."""
    source = (REPO_ROOT / "tests/strategies/test_contract.py").read_text()
    patched = source.replace("getattr(spec, bound)", "spec.min").replace("getattr(bars, column)", "bars.close")
    check_code(patched.replace("getattr(goog_bars, column)", "goog_bars.close"), "tests/strategies/test_contract.py")
