"""Bypasses of the code policy (each refused, nothing written), and the sandboxed validation:
a plan's code never runs in the editor's process, even when it slips past the policy."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
import pydantic
import pytest

import sorte.editing.apply as apply_module
from sandbox.confined import namespaces_available
from sorte.config import REPO_ROOT
from sorte.editing import EditRefused, apply_plan, load_plan, sandboxed
from sorte.editing.code_policy import check_code
from sorte.editing.policy import PolicyError

MOM = "strategies/momentum.py"

# Each bypass found by the audit, and its neighbours: refused in strategy code (reason fragment).
BYPASSES = {
    # forbidden builtins referenced, not called
    "eval_alias": ("f = eval\nf('1')", "eval' is not an allowed name"),
    "eval_in_list": ("fs = [exec]", "exec' is not an allowed name"),
    "getattr_alias": ("g = getattr\ng(x, 'a')", "getattr' is not an allowed name"),
    "open_alias": ("o = open\no('f', 'w')", "open' is not an allowed name"),
    "globals": ("g = globals()", "globals' is not an allowed name"),
    "locals": ("v = locals()", "locals' is not an allowed name"),
    "vars": ("v = vars(x)", "vars' is not an allowed name"),
    "builtins_name": ("b = __builtins__", "dunder text"),
    # dynamic names
    "getattr_concat": ("getattr(x, '__glo' + 'bals__')", "getattr' is not an allowed name"),
    "getattr_variable": ("getattr(x, name)", "getattr' is not an allowed name"),
    "setattr_variable": ("setattr(x, name, 1)", "setattr' is not an allowed name"),
    "delattr_variable": ("delattr(x, name)", "delattr' is not an allowed name"),
    "getattr_literal_dunder": ("getattr(x, '__globals__')", "getattr' is not an allowed name"),
    "getattr_literal_system": ("getattr(x, 'system')('ls')", "getattr' is not an allowed name"),
    # dunder attributes
    "globals_attr": ("f.__globals__", "dunder text"),
    "builtins_attr": ("f.__builtins__", "dunder text"),
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", "dunder text"),
    "code_attr": ("f.__code__", "dunder text"),
    "dict_attr": ("x.__dict__", "dunder text"),
    "mro": ("type(x).__mro__", "type' is not an allowed name"),
    "import_attr": ("x.__import__('os')", "dunder text"),
    "getattribute": ("x.__getattribute__('a')", "dunder text"),
    "reduce": ("x.__reduce_ex__(2)", "dunder text"),
    "private_attr": ("import statistics\nstatistics.random._os", "statistics.random' is not an allowed symbol"),
    # frame and generator introspection
    "gi_frame": ("g.gi_frame", "g.gi_frame' is not an allowed attribute"),
    "cr_frame": ("c.cr_frame", "c.cr_frame' is not an allowed attribute"),
    "f_back": ("fr.f_back", "fr.f_back' is not an allowed attribute"),
    "f_globals": ("fr.f_globals", "fr.f_globals' is not an allowed attribute"),
    "f_locals": ("fr.f_locals", "fr.f_locals' is not an allowed attribute"),
    "f_builtins": ("fr.f_builtins", "fr.f_builtins' is not an allowed attribute"),
    "tb_frame": ("tb.tb_frame", "tb.tb_frame' is not an allowed attribute"),
    # the system through an attribute chain
    "typing_sys": ("import typing\ntyping.sys.modules['os'].system('touch /tmp/pwn')", "not allowed in strategy code"),
    "numpy_os": ("import numpy as np\nnp.os", "np.os' is not an allowed symbol"),
    "statistics_sys": ("import statistics\nstatistics.sys", "statistics.sys' is not an allowed symbol"),
    "alias_system": ("def f(o):\n    return o.system('ls')", "o.system' is not an allowed attribute"),
    "popen": ("x.popen('ls')", "x.popen' is not an allowed attribute"),
    "modules": ("x.modules", "x.modules' is not an allowed attribute"),
    "builtins_attr_chain": ("x.builtins.abs", "x.builtins' is not an allowed attribute"),
    "execv": ("x.execv('/bin/sh', [])", "x.execv' is not an allowed attribute"),
    "get_type_hints": ("import typing\ntyping.get_type_hints(f)", "not allowed in strategy code"),
    # numpy / pandas writers
    "np_save": ("import numpy as np\nnp.save('f', a)", "np.save' is not an allowed symbol"),
    "np_savez": ("import numpy as np\nnp.savez('f', a=a)", "np.savez' is not an allowed symbol"),
    "np_savetxt": ("import numpy as np\nnp.savetxt('f', a)", "np.savetxt' is not an allowed symbol"),
    "tofile": ("a.tofile('f')", "a.tofile' is not an allowed attribute"),
    "dump": ("a.dump('f')", "a.dump' is not an allowed attribute"),
    "memmap": ("import numpy as np\nnp.memmap('f', mode='w+')", "np.memmap' is not an allowed symbol"),
    "open_memmap": (
        "import numpy as np\nnp.lib.format.open_memmap('f', mode='w+')",
        "np.lib' is not an allowed symbol",
    ),
    "to_csv": ("df.to_csv('f')", "df.to_csv' is not an allowed attribute"),
    "to_pickle": ("df.to_pickle('f')", "df.to_pickle' is not an allowed attribute"),
    "to_parquet": ("df.to_parquet('f')", "df.to_parquet' is not an allowed attribute"),
    "to_json": ("df.to_json('f')", "df.to_json' is not an allowed attribute"),
    "to_excel": ("df.to_excel('f')", "df.to_excel' is not an allowed attribute"),
    "to_sql": ("df.to_sql('t', con)", "df.to_sql' is not an allowed attribute"),
    "to_hdf": ("df.to_hdf('f', 'k')", "df.to_hdf' is not an allowed attribute"),
    "to_feather": ("df.to_feather('f')", "df.to_feather' is not an allowed attribute"),
    "to_string_buf": ("df.to_string('f')", "df.to_string' is not an allowed attribute"),
    "to_html": ("df.to_html('f')", "df.to_html' is not an allowed attribute"),
    # open and friends, wherever they appear
    "io_open": ("io.open('f', 'w')", "no file I/O"),
    "io_open_read": ("io.open('f')", "no file I/O"),
    "os_open": ("x.os.open('f', 1)", "x.os' is not an allowed attribute"),
    "method_open_path_then_mode": ("x.open(p, 'w')", "no file I/O"),
    "method_open_mode_first": ("p.open('w')", "no file I/O"),
    "method_open_mode_kw": ("p.open(mode='a')", "no file I/O"),
    "method_open_mode_variable": ("p.open(m)", "no file I/O"),
    "open_exclusive": ("open('f', 'x')", "open' is not an allowed name"),
    "open_update": ("open('f', 'rb+')", "open' is not an allowed name"),
    "open_mode_variable": ("open('f', mode=m)", "open' is not an allowed name"),
    "open_star_args": ("open(*args)", "open' is not an allowed name"),
    "open_kwargs": ("open('f', **kw)", "open' is not an allowed name"),
    "write_text": ("p.write_text('x')", "p.write_text' is not an allowed attribute"),
    "write_bytes": ("p.write_bytes(b'')", "p.write_bytes' is not an allowed attribute"),
    # readers and network through numpy / pandas
    "read_csv": ("import pandas as pd\npd.read_csv('f')", "pd.read_csv' is not an allowed symbol"),
    "read_json_url": (
        "import pandas as pd\npd.read_json('http://example.com/x')",
        "pd.read_json' is not an allowed symbol",
    ),
    "read_pickle": ("import pandas as pd\npd.read_pickle('f')", "pd.read_pickle' is not an allowed symbol"),
    "np_load": ("import numpy as np\nnp.load('f', allow_pickle=True)", "np.load' is not an allowed symbol"),
    "np_loadtxt": ("import numpy as np\nnp.loadtxt('f')", "np.loadtxt' is not an allowed symbol"),
    "np_genfromtxt": ("import numpy as np\nnp.genfromtxt('f')", "np.genfromtxt' is not an allowed symbol"),
    "np_fromfile": ("import numpy as np\nnp.fromfile('f')", "np.fromfile' is not an allowed symbol"),
    "datasource": ("import numpy as np\nnp.DataSource()", "np.DataSource' is not an allowed symbol"),
    "pandas_eval": ("import pandas as pd\npd.eval('1 + 1')", "pd.eval' is not an allowed symbol"),
    "query": ("df.query('a > 1')", "df.query' is not an allowed attribute"),
    # reading attributes without an attribute node
    "format_dunder": ("'{0.__class__}'.format(x)", "dunder text"),
    "format_globals": ("'{f.__globals__[os]}'.format(f=f)", "dunder text"),
    "match_class_dunder": ("x = 1\nmatch x:\n    case str(__class__=c):\n        pass", "dunder text"),
    # imports outside the allow-list, or dangerous names from allowed modules
    "import_json": ("import json", "not allowed in strategy code"),
    "import_functools": ("import functools", "not allowed in strategy code"),
    "from_numpy_load": ("from numpy import load", "numpy.load' is not an allowed symbol"),
    "from_typing_sys": ("from typing import sys", "not allowed in strategy code"),
    "numpy_ctypeslib": ("import numpy.ctypeslib", "not allowed in strategy code"),
    "from_numpy_ctypeslib": ("from numpy import ctypeslib", "numpy.ctypeslib' is not an allowed symbol"),
    "star_import": ("from numpy import *", "from numpy import *' hides what is imported"),
    "relative": ("from . import momentum", "not allowed in strategy code"),
}

# Ordinary strategy code (what the shipped strategies and the template do): allowed in both.
ALLOWED = [
    "import numpy as np\nx = np.asarray([1.0]).tolist()",
    "import pandas as pd\ns = pd.Series([1.0])\na, b = s.to_numpy(), s.rolling(3).mean().to_list()",
    'PARAMS = {"fast": {}, "slow": {}}\n\n\ndef lookback(p):\n    return max(p.fast, p.slow) + 1',
    "import numpy as np\n\n\ndef f(x):\n    with np.errstate(invalid='ignore'):\n        return np.where(x > 0, 1, -1)",
    "def f(x):\n    t = f'{x:.2f}'\n    return t",
    "from __future__ import annotations\nimport numpy as np\n\n\ndef f(x: np.ndarray) -> np.ndarray:\n    return x",
    "import numpy.linalg\nfrom strategies.momentum import PARAMS\nn = numpy.linalg.norm([1.0]) + len(PARAMS)",
    "import math\nimport statistics\nfrom sorte.indicators import sma\nx = math.sqrt(statistics.mean([1.0])) + sma",
    "import numpy as np\ny = np.maximum.accumulate(np.arange(3.0))[-1]",
    "class C:\n    def bump(self):\n        self._count = 1\n        return self._count\n\n\nc = C().bump()",
    "def f(rows):\n    return {k: v for k, v in rows.items() if k != 'x'}",
    "f = lambda x: x + 1",
]


def in_a_function(source: str) -> str:
    """The bypass as the body of a function whose parameters are the names it uses, so that
    the refusal is about what it tries, not about an unknown name."""
    params = "x, p, f, df, a, g, c, fr, tb, o, m, name, args, kw, con, io"
    return f"def helper({params}):\n" + "\n".join("    " + line for line in source.splitlines())


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_bypass_is_refused_by_the_policy(name: str) -> None:
    source, reason = BYPASSES[name]
    with pytest.raises(PolicyError) as info:
        check_code(in_a_function(source), "strategies/x.py")
    assert reason in str(info.value)


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_bypass_in_a_plan_is_refused_naming_the_operation_and_writes_nothing(tree: Path, snap, name: str) -> None:
    source, reason = BYPASSES[name]
    function = (
        "def helper(x=None, p=None, f=None, df=None, a=None, g=None, c=None, fr=None, tb=None, o=None):\n"
        + "\n".join("    " + line for line in source.splitlines())
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
    # Refused by the policy (a line of momentum.py named), before anything ran or was written.
    assert "operation 1 (add_function) refused" in str(info.value) and f"{MOM}:" in info.value.reason
    assert snap(tree) == before


@pytest.mark.parametrize("source", ALLOWED)
def test_ordinary_code_is_allowed(source: str) -> None:
    check_code(source, "strategies/x.py")
    check_code(source, "tests/strategies/test_x.py")


def test_the_same_dangerous_call_rules_apply_to_new_tests() -> None:
    for name in ("typing_sys", "np_save", "to_csv", "getattr_concat", "f_back", "method_open_path_then_mode"):
        with pytest.raises(PolicyError):
            check_code(BYPASSES[name][0], "tests/strategies/test_x.py")
    with pytest.raises(PolicyError, match="'functools' is not allowed in test code"):
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


needs_namespaces = pytest.mark.skipif(
    not namespaces_available(), reason="needs root and network/mount namespaces (unshare)"
)
LEAK = "import os\nraise ValueError('secret=' + os.environ.get('SORTE_TEST_SECRET', 'absent'))"
FULL = {"network": True, "uid_dropped": True, "private_tmp": True, "own_root": True}


@pytest.mark.parametrize("mode", [pytest.param("namespaces", marks=needs_namespaces), "no_namespaces"])
def test_the_validator_sees_no_host_environment(
    tree: Path, no_policy, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, mode: str
) -> None:
    if mode == "no_namespaces":
        request.getfixturevalue("no_namespaces")
    sandboxed.shutdown()  # restarted below with the secret in this process's environment
    monkeypatch.setenv("SORTE_TEST_SECRET", "hunter2")
    raw = {"summary": "leak", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": LEAK}]}
    with pytest.raises(EditRefused, match="secret=absent"):
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert sandboxed._VALIDATOR.isolation["network"] is (mode == "namespaces")


def test_the_validator_reads_nothing_outside_its_roots(tree: Path, no_policy) -> None:
    body = "return len(open('/etc/hostname').read())"
    raw = {"summary": "read", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match="reading /etc/hostname is not allowed"):
        apply_plan(load_plan(json.dumps(raw)), tree)


@needs_namespaces
def test_as_root_the_validator_has_its_own_root_and_tmp(tree: Path, no_policy) -> None:
    sandboxed.shutdown()
    # A file in the host's /tmp, and the edited tree's folder: neither exists for plan code.
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix="sorte-host-") as host_file:
        paths = (host_file.name, str(tree))
        body = f"import os\nraise ValueError(repr(([os.path.exists(p) for p in {paths!r}], os.getuid())))"
        raw = {"summary": "look", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
        with pytest.raises(EditRefused, match=r"\(\[False, False\], 65534\)"):
            apply_plan(load_plan(json.dumps(raw)), tree)
    assert sandboxed._VALIDATOR.isolation == FULL
    assert sandboxed.isolation_warnings() == []


# Run by an interpreter that lives under /tmp: one check whose strategy reports what it sees.
UNDER_TMP_SCRIPT = """
import json, sys
from sandbox.local_backend import interpreter_under_tmp
from sorte.editing import sandboxed

probe = (
    "import os, sys\\n"
    "def lookback(p):\\n"
    "    raise ValueError(repr((sys.prefix, os.path.exists(%r), os.getuid())))\\n"
    "def features(bars, p):\\n    return {}\\n"
    "def decide(f, p):\\n    return None\\n"
)
check = {"tag": 0, "stem": "probe", "params": {}, "stage": None}
failure = sandboxed.run_checks({"strategies/probe.py": probe % sys.argv[1]}, [check])
isolation = sandboxed._VALIDATOR.isolation
print(json.dumps({"under_tmp": interpreter_under_tmp(), "failure": failure, "isolation": isolation}))
"""


def _venv_under_tmp(folder: Path) -> Path:
    """A virtualenv under /tmp with numpy (hard links to this one's where the file system allows)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60)
    site = Path(numpy.__file__).resolve().parent.parent
    target = next((folder / "lib").glob("python3*/site-packages"))
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            shutil.copytree(site / name, target / name, copy_function=_link_or_copy)
    return folder / "bin" / "python"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@needs_namespaces
def test_an_interpreter_under_tmp_is_validated_with_a_private_tmp() -> None:
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="sorte-venv-"))
    try:
        python = _venv_under_tmp(folder / "venv")
        host_file = folder / "host-file"  # next to the interpreter, in the host's /tmp
        host_file.write_text("x")
        # The host side imports Sorte and its dependencies from here; the validator (python -I,
        # no environment) only has the virtualenv under /tmp.
        site = Path(pydantic.__file__).resolve().parent.parent
        out = subprocess.run(
            [str(python), "-c", UNDER_TMP_SCRIPT, str(host_file)],
            env={"PATH": os.environ["PATH"], "PYTHONPATH": f"{REPO_ROOT}:{site}"},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    answer = json.loads(out.stdout.splitlines()[-1])
    assert answer["under_tmp"] is True and answer["isolation"] == FULL
    prefix, seen, uid = ast.literal_eval(answer["failure"]["detail"].removeprefix("ValueError: "))
    assert (prefix, seen, uid) == (str(folder / "venv"), False, 65534)


def test_without_namespaces_validation_runs_and_says_what_it_lacks(tree: Path, no_namespaces) -> None:
    raw = {"summary": "p", "ops": [{"op": "set_param", "strategy": "momentum", "name": "fast", "value": 12}]}
    result = apply_plan(load_plan(json.dumps(raw)), tree, write=False)
    assert result.changed and result.warnings == [sandboxed.WEAKER]
    assert "no network or mount namespace" in sandboxed.WEAKER and "current user" in sandboxed.WEAKER
    sandboxed.shutdown()  # a restarted validator says it again in its result, but logs nothing new
    assert apply_plan(load_plan(json.dumps(raw)), tree, write=False).warnings == [sandboxed.WEAKER]
    logged = [e for e in no_namespaces if e["event"] == "editing.validator.weaker_isolation"]
    assert [(e["log_level"], e["missing"]) for e in logged] == [("warning", sandboxed.WEAKER)]
    assert sandboxed._VALIDATOR.isolation == dict.fromkeys(FULL, False)


# Without namespaces the host's /tmp and /proc exist for plan code: the audit hook is what holds.
WEAK_ROUTES = {
    "write_host_tmp": ("open({marker!r}, 'w').write('x')", "writing is not allowed"),
    "editor_environ": (
        "raise ValueError(open('/proc/{editor}/environ', 'rb').read())",
        r"reading /proc/\d+/environ is not allowed",
    ),
}


@pytest.mark.parametrize("route", sorted(WEAK_ROUTES))
def test_without_namespaces_the_audit_hook_still_holds(
    tree: Path, tmp_path: Path, no_policy, no_namespaces, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    sandboxed.shutdown()  # restarted below from a process holding the canary
    monkeypatch.setenv("SORTE_TEST_SECRET", "hunter2")
    marker = tmp_path / "marker"
    code, expected = WEAK_ROUTES[route]
    body = code.replace("{marker!r}", repr(str(marker))).replace("{editor}", str(os.getpid())) + "\nreturn 1"
    raw = {"summary": "w", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match=expected) as info:
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert not marker.exists() and "hunter2" not in info.value.reason
    assert sandboxed.isolation_warnings() == [sandboxed.WEAKER]


def test_a_plan_that_runs_no_code_carries_no_warning(tree: Path, no_namespaces) -> None:
    # A prompt alone cannot break a strategy: nothing is imported, no validator is started.
    raw = {"summary": "p", "ops": [{"op": "edit_prompt", "prompt": "risk", "template": "Judge {symbol} {side}."}]}
    result = apply_plan(load_plan(json.dumps(raw)), tree, write=False)
    assert result.changed and result.warnings == [] and sandboxed._VALIDATOR.isolation == {}


# Plan code that tries to switch the audit hook off before it reads a file outside its roots.
DISARMS = {
    "main_flags": "import sys\nm = sys.modules['__main__']\nm._ARMED = [False]\nm._READ_ROOTS.append('/')",
    "builtins": "import builtins\nbuiltins.len = lambda x: 0\nbuiltins.type = lambda x: str",
    "os_functions": "import os, posix, posixpath\nos.path.realpath = lambda p: '/'\nposix.lstat = None\n"
    "posixpath.realpath = lambda p: '/'",
    "module_constants": "import sys\nm = sys.modules['__main__']\nm._BLOCKED = ()\nm._WRITE_FLAGS = 0\n"
    "m._make_hook = lambda roots: None",
}


@pytest.mark.parametrize("route", sorted(DISARMS))
def test_plan_code_cannot_disarm_the_validator_hook(tree: Path, snap, no_policy, route: str) -> None:
    body = DISARMS[route] + "\nreturn len(open('/etc/hostname').read())"
    raw = {"summary": "disarm", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    before = snap(tree)
    with pytest.raises(EditRefused, match="reading /etc/hostname is not allowed"):
        apply_plan(load_plan(json.dumps(raw)), tree)
    assert snap(tree) == before


def test_plan_code_cannot_reach_the_hook_through_the_gc(tree: Path, no_policy) -> None:
    body = "import gc\nreturn len(gc.get_objects())"
    raw = {"summary": "walk", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]}
    with pytest.raises(EditRefused, match="gc.get_objects is not allowed"):
        apply_plan(load_plan(json.dumps(raw)), tree)


# Every closure on the stack plan code can walk gets its tuples replaced by ('/',): were the
# hook's roots among them, /etc/hostname would become readable.
FRAME_WALK = """
import sys
fr = sys._getframe()
while fr is not None:
    for value in list(fr.f_locals.values()) + list(fr.f_globals.values()):
        for cell in getattr(value, '__closure__', None) or ():
            try:
                if isinstance(cell.cell_contents, tuple):
                    cell.cell_contents = ('/',)
            except ValueError:
                pass
    fr = fr.f_back
return len(open('/etc/hostname').read())
"""


def test_plan_code_cannot_reach_the_hook_by_walking_frames(tree: Path, no_policy) -> None:
    raw = {"summary": "walk", "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": FRAME_WALK}]}
    with pytest.raises(EditRefused, match="reading /etc/hostname is not allowed"):
        apply_plan(load_plan(json.dumps(raw)), tree)


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
