"""Candidate code against the protected suite's evidence, with only the operating system in its way.

Hostile strategies are laid straight over a copy of the project's tree (no code policy, no
security gate in front of them) and judged by the tests gate in the real sandboxes. Their
code runs in the contract suite's strategy worker, as the same user as the harness's pytest
process. Each one tries to forge the report: read the nonce from pytest's environment or
memory, write a passing report into pytest's standard output or into the writable ``{out}``
folder, attach to pytest, kill it. Then it breaks the contract. The gate must fail or error,
never pass, and what the attack could reach is read back from the ``{out}`` folder it writes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import copy_project

from guardian import run_tests_gate
from sandbox import get_backend
from sandbox.local_backend import interpreter_under_tmp
from tests.adversarial.canary import assert_no_canary, set_canary

pytestmark = [pytest.mark.slow]

FORGER = '''\
"""Forges the protected suite's report, then breaks the contract."""
import ctypes
import os

import numpy as np

PARAMS = {"x": {"type": "int", "default": 1, "min": 0, "max": 10, "doc": "unused"}}
FORGED = '<testsuite tests="1" failures="0" errors="0" skipped="0"><testcase classname="t" name="green"/></testsuite>'


def _try(found, what, fn):
    try:
        fn()
        found.append(what + ": ok")
    except BaseException as exc:
        found.append(what + ": " + type(exc).__name__)


def _attack():
    parent, found, nonce = os.getppid(), [], []

    def environ():
        for item in open("/proc/%d/environ" % parent, "rb").read().split(b"\\0"):
            if item.startswith(b"SORTE_HARNESS_NONCE="):
                nonce.append(item.split(b"=", 1)[1].decode())

    def report():
        key = nonce[0] if nonce else "0" * 32
        return "=== sorte-harness-report %s\\n%s\\n=== sorte-harness-end %s\\n" % (key, FORGED, key)

    def parent_stdout():
        with open("/proc/%d/fd/1" % parent, "w") as fh:
            fh.write(report())

    def parent_mem():
        open("/proc/%d/mem" % parent, "rb").close()

    def ptrace():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, parent, None, None) != 0:  # PTRACE_ATTACH
            raise PermissionError(ctypes.get_errno())
        libc.ptrace(17, parent, None, None)

    def out_junit():
        os.makedirs("/tmp/out", exist_ok=True)
        with open("/tmp/out/junit.xml", "w") as fh:
            fh.write(FORGED)

    _try(found, "environ", environ)
    _try(found, "parent_stdout", parent_stdout)
    _try(found, "parent_mem", parent_mem)
    _try(found, "ptrace", ptrace)
    _try(found, "out_junit", out_junit)
    found.append("nonce: " + ("found" if nonce else "none"))
    found.append("env: " + ",".join(sorted(os.environ)))
    ACTION
    try:
        with open("/tmp/out/probe-%d.txt" % os.getpid(), "w") as fh:
            fh.write("\\n".join(found))
    except OSError:
        pass


_attack()


def lookback(p):
    return 1


def features(bars, p):
    return {"n": len(bars.close)}


def decide(f, p):
    n = f["n"]
    return np.full(n, 2.0), np.ones(n, dtype=np.int8), np.array(["forged"] * n, dtype=object)
'''

ACTIONS = {
    "forge": "",
    "kill-pytest": "os.kill(parent, 9)",
}


def _tree(root: Path, action: str) -> Path:
    tree = copy_project(root)
    source = FORGER.replace("    ACTION\n", textwrap.indent(ACTIONS[action], "    ") + "\n")
    (tree / "strategies" / "forger.py").write_text(source)
    return tree


def _probes(outputs: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, text in outputs.items():
        if name.startswith("probe-"):
            for line in text.splitlines():
                what, _, result = line.partition(": ")
                found.setdefault(what, result)
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evidence")


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("backend", [pytest.param("docker", marks=pytest.mark.docker), "local"])
def test_a_strategy_cannot_forge_the_protected_report(
    project: Path, backend: str, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "docker":
        require_docker()
    elif interpreter_under_tmp():
        pytest.skip("interpreter under /tmp: the local sandbox has no private /tmp there")
    set_canary(monkeypatch)
    tree = _tree(project / f"{backend}-{action}", action)
    runs = []

    def runner(command: list[str], worktree: Path, limits: object):
        result = get_backend(backend).run(command, worktree, limits)
        runs.append(result)
        return result

    gate = run_tests_gate(runner, tree, paths=["tests/strategies"], limits={"timeout_s": 240, "memory_bytes": 1 << 30})
    (run,) = runs
    probes = _probes(run.outputs)
    assert probes, f"the forger's code did not run: {run.stderr[-2000:]}"
    assert gate.status != "pass", gate.summary
    if action == "forge":
        assert gate.status == "fail", gate.summary
        assert any("forger" in f.message for f in gate.findings), [f.message for f in gate.findings]
        assert gate.details["passed"] > 1, "the other strategies' contract tests still ran"
    assert probes["nonce"] == "none", probes
    for what in ("environ", "parent_stdout", "parent_mem", "ptrace"):
        assert probes[what] != "ok", f"{what} reached pytest: {probes}"
    assert probes["out_junit"] == "ok", "the {out} folder is writable: the gate must not read the report there"
    assert "NONCE" not in probes["env"] and "CANARY" not in probes["env"], probes["env"]
    for text in (run.stdout, run.stderr, *run.outputs.values()):
        assert_no_canary(text)
