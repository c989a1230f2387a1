"""Bypasses of the code policy (each refused, nothing written), and the sandboxed validation:
a plan's code never runs in the editor's process, even when it slips past the policy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import sorte.editing.apply as apply_module
from sorte.editing import EditRefused, apply_plan, load_plan, sandboxed
from sorte.editing.policy import PolicyError, check_code

MOM = "strategies/momentum.py"

# Each bypass found by the audit, and its neighbours: refused in strategy code (reason fragment).
BYPASSES = {
    # forbidden builtins referenced, not called
    "eval_alias": ("f = eval\nf('1')", "'eval'"),
    "eval_in_list": ("fs = [exec]", "'exec'"),
    "getattr_alias": ("g = getattr\ng(x, 'a')", "'getattr' may only be called"),
    "open_alias": ("o = open\no('f', 'w')", "'open' may only be called"),
    "globals": ("g = globals()", "'globals'"),
    "locals": ("v = locals()", "'locals'"),
    "vars": ("v = vars(x)", "'vars'"),
    "builtins_name": ("b = __builtins__", "'__builtins__'"),
    # dynamic names
    "getattr_concat": ("getattr(x, '__glo' + 'bals__')", "not a literal"),
    "getattr_variable": ("getattr(x, name)", "not a literal"),
    "setattr_variable": ("setattr(x, name, 1)", "not a literal"),
    "delattr_variable": ("delattr(x, name)", "not a literal"),
    "getattr_literal_dunder": ("getattr(x, '__globals__')", "dunder"),
    "getattr_literal_system": ("getattr(x, 'system')('ls')", "reaches the system"),
    # dunder attributes
    "globals_attr": ("f.__globals__", "dunder"),
    "builtins_attr": ("f.__builtins__", "dunder"),
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", "dunder"),
    "code_attr": ("f.__code__", "dunder"),
    "dict_attr": ("x.__dict__", "dunder"),
    "mro": ("type(x).__mro__", "dunder"),
    "import_attr": ("x.__import__('os')", "dunder"),
    "getattribute": ("x.__getattribute__('a')", "dunder"),
    "reduce": ("x.__reduce_ex__(2)", "dunder"),
    "private_attr": ("statistics.random._os", "private"),
    # frame and generator introspection
    "gi_frame": ("g.gi_frame", "frame"),
    "cr_frame": ("c.cr_frame", "frame"),
    "f_back": ("fr.f_back", "frame"),
    "f_globals": ("fr.f_globals", "frame"),
    "f_locals": ("fr.f_locals", "frame"),
    "f_builtins": ("fr.f_builtins", "frame"),
    "tb_frame": ("tb.tb_frame", "frame"),
    # the system through an attribute chain
    "typing_sys": ("import typing\ntyping.sys.modules['os'].system('touch /tmp/pwn')", "reaches the system"),
    "numpy_os": ("import numpy as np\nnp.os", "reaches the system"),
    "statistics_sys": ("import statistics\nstatistics.sys", "reaches the system"),
    "alias_system": ("def f(o):\n    return o.system('ls')", "reaches the system"),
    "popen": ("x.popen('ls')", "reaches the system"),
    "modules": ("x.modules", "reaches the system"),
    "builtins_attr_chain": ("x.builtins.abs", "reaches the system"),
    "execv": ("x.execv('/bin/sh', [])", "reaches the system"),
    "get_type_hints": ("import typing\ntyping.get_type_hints(f)", "reaches the system"),
    # numpy / pandas writers
    "np_save": ("np.save('f', a)", "I/O"),
    "np_savez": ("np.savez('f', a=a)", "I/O"),
    "np_savetxt": ("np.savetxt('f', a)", "I/O"),
    "tofile": ("a.tofile('f')", "I/O"),
    "dump": ("a.dump('f')", "I/O"),
    "memmap": ("np.memmap('f', mode='w+')", "I/O"),
    "open_memmap": ("np.lib.format.open_memmap('f', mode='w+')", "I/O"),
    "to_csv": ("df.to_csv('f')", "I/O"),
    "to_pickle": ("df.to_pickle('f')", "I/O"),
    "to_parquet": ("df.to_parquet('f')", "I/O"),
    "to_json": ("df.to_json('f')", "I/O"),
    "to_excel": ("df.to_excel('f')", "I/O"),
    "to_sql": ("df.to_sql('t', con)", "I/O"),
    "to_hdf": ("df.to_hdf('f', 'k')", "I/O"),
    "to_feather": ("df.to_feather('f')", "I/O"),
    "to_string_buf": ("df.to_string('f')", "I/O"),
    "to_html": ("df.to_html('f')", "I/O"),
    # open and friends, wherever they appear
    "io_open": ("io.open('f', 'w')", "open() for writing"),
    "io_open_read": ("io.open('f')", "'io'"),
    "os_open": ("x.os.open('f', 1)", "reaches the system"),
    "method_open_path_then_mode": ("x.open(p, 'w')", "open() for writing"),
    "method_open_mode_first": ("p.open('w')", "open() for writing"),
    "method_open_mode_kw": ("p.open(mode='a')", "open() for writing"),
    "method_open_mode_variable": ("p.open(m)", "open() for writing"),
    "open_exclusive": ("open('f', 'x')", "open() for writing"),
    "open_update": ("open('f', 'rb+')", "open() for writing"),
    "open_mode_variable": ("open('f', mode=m)", "open() for writing"),
    "open_star_args": ("open(*args)", "open() for writing"),
    "open_kwargs": ("open('f', **kw)", "open() for writing"),
    "write_text": ("p.write_text('x')", "I/O"),
    "write_bytes": ("p.write_bytes(b'')", "I/O"),
    # readers and network through numpy / pandas
    "read_csv": ("pd.read_csv('f')", "I/O"),
    "read_json_url": ("pd.read_json('http://example.com/x')", "I/O"),
    "read_pickle": ("pd.read_pickle('f')", "I/O"),
    "np_load": ("np.load('f', allow_pickle=True)", "I/O"),
    "np_loadtxt": ("np.loadtxt('f')", "I/O"),
    "np_genfromtxt": ("np.genfromtxt('f')", "I/O"),
    "np_fromfile": ("np.fromfile('f')", "I/O"),
    "datasource": ("np.DataSource()", "I/O"),
    "pandas_eval": ("pd.eval('1 + 1')", "I/O"),
    "query": ("df.query('a > 1')", "I/O"),
    # reading attributes without an attribute node
    "format_dunder": ("'{0.__class__}'.format(x)", "format string"),
    "format_globals": ("'{f.__globals__[os]}'.format(f=f)", "format string"),
    "match_class_dunder": ("match x:\n    case str(__class__=c):\n        pass", "class pattern"),
    # imports outside the allow-list, or dangerous names from allowed modules
    "import_json": ("import json", "not allowed in strategy code"),
    "import_functools": ("import functools", "not allowed in strategy code"),
    "from_numpy_load": ("from numpy import load", "I/O"),
    "from_typing_sys": ("from typing import sys", "reaches the system"),
    "numpy_ctypeslib": ("import numpy.ctypeslib", "ctypeslib"),
    "from_numpy_ctypeslib": ("from numpy import ctypeslib", "reaches the system"),
    "star_import": ("from numpy import *", "'*'"),
    "relative": ("from . import momentum", "relative import"),
}

ALLOWED = [
    "import numpy as np\nx = np.asarray([1]).tolist()",
    "import pandas as pd\ns = pd.Series([1.0])\na, b, c = s.to_numpy(), s.to_list(), s.to_dict()",
    "x = getattr(p, 'fast', 3)\ny = hasattr(p, 'slow')",
    "def f():\n    return f.__name__, f.__doc__",
    "with open('data.csv') as fh:\n    fh.read()",
    "open('data.csv', 'rb')",
    "p.open()",
    "p.open('r')",
    "x.open('data.csv', 'rb')",
    "t = '{:>10} {0} {x:.2f}'.format(1, x=2.0)",
    "t = f'{x:.2f}'",
    "from __future__ import annotations\nfrom typing import Any",
    "import numpy.linalg\nfrom strategies.momentum import PARAMS",
    "import math\nimport statistics\nfrom sorte.indicators import sma",
    "class C:\n    def __init__(self):\n        self._cache = {}",
]


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_bypass_is_refused_by_the_policy(name: str) -> None:
    source, reason = BYPASSES[name]
    with pytest.raises(PolicyError) as info:
        check_code(source, "strategies/x.py")
    assert reason in str(info.value)


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_bypass_in_a_plan_is_refused_naming_the_operation_and_writes_nothing(tree: Path, snap, name: str) -> None:
    source, reason = BYPASSES[name]
    function = "def helper(x=None, p=None, f=None, df=None, a=None, np=None, pd=None):\n" + "\n".join(
        "    " + line for line in source.splitlines()
    )
    raw = {
        "summary": "bypass",
        "ops": [
            {"op": "set_param", "strategy": "momentum", "name": "fast", "value": 12},
            {"op": "add_function", "file": MOM, "source": function},
        ],
    }
    before = snap(tree)
    with pytest.raises(EditRefused) as info:
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert (info.value.op_index, info.value.op_kind) == (1, "add_function")
    assert "operation 1 (add_function) refused" in str(info.value) and reason in info.value.reason
    assert snap(tree) == before


@pytest.mark.parametrize("source", ALLOWED)
def test_ordinary_code_is_allowed(source: str) -> None:
    check_code(source, "strategies/x.py")
    check_code(source, "tests/strategies/test_x.py")


def test_the_same_dangerous_call_rules_apply_to_new_tests() -> None:
    for name in ("typing_sys", "np_save", "to_csv", "getattr_concat", "f_back", "method_open_path_then_mode"):
        with pytest.raises(PolicyError):
            check_code(BYPASSES[name][0], "tests/strategies/test_x.py")
    with pytest.raises(PolicyError, match="reaches the system"):
        check_code("import functools\nfunctools.sys", "tests/strategies/test_x.py")


def test_the_shipped_strategies_pass_the_policy() -> None:
    from sorte.config import REPO_ROOT

    files = sorted((REPO_ROOT / "strategies").glob("*.py"))
    assert len(files) >= 5
    for path in files:
        check_code(path.read_text(), f"strategies/{path.name}")


# --- the sandboxed validation ---------------------------------------------------------

# Code that slipped past the policy: each tries to leave a marker outside the sandbox.
ESCAPES = {
    "open_for_writing": "open({marker!r}, 'w').write('x')",
    "os_system": "import os\nos.system('touch {marker}')",
    "typing_sys": "import typing\ntyping.sys.modules['os'].system('touch {marker}')",
    "subprocess": "import subprocess\nsubprocess.run(['touch', {marker!r}])",
    "pathlib": "import pathlib\npathlib.Path({marker!r}).write_text('x')",
    "os_open": "import os\nos.close(os.open({marker!r}, os.O_CREAT | os.O_WRONLY))",
    "numpy_save": "import numpy\nnumpy.save({marker!r}, numpy.zeros(1))",
    "socket": "import socket\nsocket.create_connection(('127.0.0.1', 9))",
    "guardian_rules": "open({guardian!r}, 'a').write('weakened')",
}


@pytest.fixture()
def no_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a policy bypass: the editor's code check lets everything through."""
    monkeypatch.setattr(apply_module, "check_code", lambda source, filename: None)


@pytest.mark.parametrize("write", [True, False], ids=["apply", "dry_run"])
@pytest.mark.parametrize("route", sorted(ESCAPES))
def test_plan_code_never_runs_on_the_host(tree: Path, tmp_path: Path, snap, no_policy, route: str, write: bool) -> None:
    marker = tmp_path / "marker"
    guardian = tree / "guardian/rules.yaml"
    code = ESCAPES[route].format(marker=str(marker), guardian=str(guardian))
    body = code + "\nreturn max(p.fast, p.slow) + 1"
    raw = {"summary": "escape", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    before = snap(tree)
    with pytest.raises(EditRefused, match="does not validate") as info:
        apply_plan(load_plan(json.dumps(raw)), tree, write=write)
    assert (info.value.op_index, info.value.op_kind) == (0, "replace_body")
    assert not marker.exists()
    assert snap(tree) == before


def test_code_run_at_import_time_stays_in_the_sandbox(tree: Path, tmp_path: Path, snap, no_policy) -> None:
    marker = tmp_path / "marker"
    # A default value is evaluated when the module is imported, before any function is called.
    source = f"def helper(x=open({str(marker)!r}, 'w')):\n    return x\n"
    raw = {"summary": "escape", "ops": [{"op": "add_function", "file": MOM, "source": source}]}
    before = snap(tree)
    with pytest.raises(EditRefused, match="failed to import"):
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert not marker.exists() and snap(tree) == before


def test_the_validator_sees_no_host_environment(tree: Path, no_policy, monkeypatch: pytest.MonkeyPatch) -> None:
    sandboxed.shutdown()  # restarted below with the secret in this process's environment
    monkeypatch.setenv("SORTE_TEST_SECRET", "hunter2")
    body = "import os\nraise ValueError('secret=' + os.environ.get('SORTE_TEST_SECRET', 'absent'))"
    raw = {"summary": "leak", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match="secret=absent"):
        apply_plan(load_plan(json.dumps(raw)), tree)


def test_the_validator_reads_nothing_outside_its_roots(tree: Path, no_policy) -> None:
    body = "return len(open('/etc/hostname').read())"
    raw = {"summary": "read", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match="reading /etc/hostname is not allowed"):
        apply_plan(load_plan(json.dumps(raw)), tree)


def test_the_validator_is_isolated_as_far_as_this_machine_allows() -> None:
    from sandbox import can_unshare_network

    sandboxed.run_checks({}, [])
    isolation = sandboxed._VALIDATOR.isolation
    assert isolation["network"] == can_unshare_network()
    if os.geteuid() == 0 and can_unshare_network():
        assert isolation == {"network": True, "uid_dropped": True, "private_tmp": isolation["private_tmp"]}


def test_a_validation_that_never_ends_is_refused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandboxed, "JOB_TIMEOUT_S", 1.0)
    real = sandboxed.run_checks
    monkeypatch.setattr(apply_module, "run_checks", lambda files, checks: real(files, checks, timeout_s=1.0))
    body = "while True:\n    pass"
    raw = {"summary": "loop", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match="timed out"):
        apply_plan(load_plan(json.dumps(raw)), tree)
    # The validator keeps serving after a killed job.
    ok = {"summary": "ok", "ops": [{"op": "set_param", "strategy": "momentum", "name": "fast", "value": 12}]}
    assert apply_plan(load_plan(json.dumps(ok)), tree).changed


def test_protected_file_changed_during_validation_is_refused(tree: Path, snap, monkeypatch) -> None:
    def validation_touching_guardian(files: dict, checks: list) -> None:
        (tree / "guardian/rules.yaml").write_text("rules: [weakened]\n")

    monkeypatch.setattr(apply_module, "run_checks", validation_touching_guardian)
    original = (tree / MOM).read_bytes()
    raw = {"summary": "p", "ops": [{"op": "set_param", "strategy": "momentum", "name": "fast", "value": 12}]}
    with pytest.raises(EditRefused, match="protected files changed: guardian/rules.yaml") as info:
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert info.value.op_index is None
    assert (tree / MOM).read_bytes() == original  # refused before anything was written


# --- targets ------------------------------------------------------------------------


def test_ambiguous_stage_name_is_refused(tree: Path, snap) -> None:
    path = tree / "strategies/cascade.py"
    text = path.read_text()
    technical = next(line for line in text.splitlines() if '"name": "technical"' in line)
    path.write_text(text.replace(technical, technical + "\n" + technical, 1))
    assert path.read_text().count('"name": "technical"') == 2
    before = snap(tree)
    raw = {"summary": "p", "ops": [{"op": "set_stage", "stage": "technical", "threshold": 0.6}]}
    with pytest.raises(EditRefused) as info:
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert (info.value.op_index, info.value.op_kind) == (0, "set_stage")
    assert "2 cascade stages are named 'technical' (ambiguous)" in info.value.reason
    assert snap(tree) == before


def test_remove_plan_applied_twice_is_refused_the_second_time_and_changes_nothing(tree: Path, snap) -> None:
    add = {"summary": "p", "ops": [{"op": "add_function", "file": MOM, "source": "def unused(x):\n    return x\n"}]}
    remove = {"summary": "p", "ops": [{"op": "remove_function", "file": MOM, "name": "unused"}]}
    apply_plan(load_plan(json.dumps(add)), tree)
    assert apply_plan(load_plan(json.dumps(remove)), tree).changed
    after = snap(tree)
    # A missing target is refused (issue 4), so a remove plan is not re-applicable as a no-op:
    # the second application is refused, and, as idempotence requires, changes nothing.
    # (Re-running a whole run id reuses its branch and commit: that is the service's idempotence.)
    with pytest.raises(EditRefused, match="function unused not found in strategies/momentum.py"):
        apply_plan(load_plan(json.dumps(remove)), tree)
    assert snap(tree) == after
