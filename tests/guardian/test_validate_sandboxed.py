"""Hostile candidates validated for real in the Docker sandbox: each ends in a failed verdict
with its reason, and the host is untouched (needs a Docker engine; CI starts one)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needs_docker import require_docker
from project_repo import branch, copy_project, git, patch_function

from guardian.validate import validate
from guardian.verdict import Verdict
from sandbox import owned_containers
from sorte.config import GitSettings, GuardianSettings, Settings

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DECIDE = "def decide(f, p):\n"
MOMENTUM = "strategies/momentum.py"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_docker()
    return copy_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def settings(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("var"),  # shared: the baseline's backtests are cached once
        git=GitSettings(repo_root=repo),
        # Every gate's own finding is wanted here, so no fail fast (tested at the end).
        guardian=GuardianSettings(tests_timeout_s=40, benchmark_timeout_s=40, memory_mb=512, pids=128, fail_fast=False),
        sandbox="docker",
    )


def strategy_with(repo: Path, before_body: str, imports: str = "") -> dict[str, str]:
    """momentum.py whose ``decide`` first runs ``before_body`` (indented by 4)."""
    body = "".join(f"    {line}\n" for line in before_body.splitlines())
    text = patch_function(repo, MOMENTUM, DECIDE, DECIDE + body)
    return {MOMENTUM: imports + text}


def strategy_test(name: str, source: str) -> dict[str, str]:
    return {f"tests/strategies/test_{name}.py": source}


def check(settings: Settings, repo: Path, name: str, changes: dict[str, str]) -> Verdict:
    branch(repo, name, changes)
    before = git(repo, "rev-parse", "main")
    verdict = validate(settings, name)
    assert verdict.overall == "fail", verdict.to_text()
    assert verdict.reasons(), "a failed verdict says why"
    assert git(repo, "rev-parse", "main") == before and git(repo, "status", "--porcelain") == ""
    assert owned_containers() == [], "a sandbox container was left behind"
    return verdict


def rules(verdict: Verdict, gate: str) -> set[str]:
    found = verdict.gate(gate)
    assert found is not None
    return {f.rule for f in found.findings}


def test_endless_loop_times_out(settings: Settings, repo: Path) -> None:
    verdict = check(settings, repo, "loop", strategy_with(repo, "while True:\n    pass"))
    assert verdict.gate("tests").status == "timeout", verdict.to_text()
    assert verdict.gate("benchmark").status == "timeout", verdict.to_text()
    assert any("timeout" in r for r in verdict.reasons())


def test_allocating_30_gb_is_killed_for_memory(settings: Settings, repo: Path) -> None:
    # 64 MiB at a time, each written: the container's memory limit, not malloc, must stop it.
    verdict = check(settings, repo, "hog", strategy_with(repo, "_hog = [b'x' * (1 << 26) for _ in range(480)]"))
    assert verdict.gate("tests").summary == "pytest was killed: out of memory", verdict.to_text()
    assert verdict.gate("benchmark").summary == "backtest killed: out of memory", verdict.to_text()


def test_fork_bomb_is_contained(settings: Settings, repo: Path) -> None:
    bomb = "import os\n\n\ndef test_forks():\n    while True:\n        os.fork()\n"
    verdict = check(settings, repo, "forks", strategy_test("forks", bomb))
    assert verdict.gate("tests").status in ("fail", "timeout"), verdict.to_text()
    assert "sorte-no-ctypes-fork-kill" in rules(verdict, "security"), verdict.to_text()


def test_opening_a_socket_fails(settings: Settings, repo: Path) -> None:
    changes = strategy_with(repo, "socket.create_connection(('1.1.1.1', 53), timeout=2).close()", "import socket\n")
    verdict = check(settings, repo, "socket", changes)
    assert "sorte-no-network" in rules(verdict, "security"), verdict.to_text()
    assert verdict.gate("tests").status == "fail", verdict.to_text()
    assert any("Network is unreachable" in f.message or "OSError" in f.message for f in verdict.gate("tests").findings)


def test_reading_etc_shadow_finds_nothing(settings: Settings, repo: Path) -> None:
    source = "def test_shadow():\n    print(open('/etc/shadow').read())\n"
    verdict = check(settings, repo, "shadow", strategy_test("shadow", source))
    assert verdict.gate("tests").status == "fail"
    assert any("No such file" in f.message for f in verdict.gate("tests").findings), verdict.to_text()
    assert "sorte-no-file-read" in rules(verdict, "security"), verdict.to_text()
    host_shadow = Path("/etc/shadow")
    if os.access(host_shadow, os.R_OK):
        first = host_shadow.read_text().splitlines()[0]
        assert first not in verdict.to_json()


def test_host_environment_does_not_leak(settings: Settings, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "canary-" + secrets.token_hex(8)
    monkeypatch.setenv("SORTE_CANARY_SECRET", canary)
    source = "import os\n\n\ndef test_env():\n    assert 'SORTE_CANARY_SECRET' in os.environ, sorted(os.environ)\n"
    verdict = check(settings, repo, "env", strategy_test("env", source))
    assert verdict.gate("tests").status == "fail", verdict.to_text()
    assert "sorte-no-env" in rules(verdict, "security"), verdict.to_text()
    assert canary not in verdict.to_json()


def test_writes_outside_the_tmpfs_fail(settings: Settings, repo: Path) -> None:
    target = Path("/usr/lib") / f"sorte-evil-{secrets.token_hex(4)}"
    source = (
        "from pathlib import Path\n\n\n"
        "def test_own_tree():\n    Path('strategies/momentum.py').write_text('hacked')\n\n\n"
        f"def test_host():\n    Path({str(target)!r}).write_text('x')\n"
    )
    verdict = check(settings, repo, "writes", strategy_test("writes", source))
    tests = verdict.gate("tests")
    # The candidate's own tests run apart; their failures are theirs (details["candidate"]).
    candidate = tests.details.get("candidate", {})
    assert candidate.get("failures", 0) + candidate.get("errors", 0) == 2, verdict.to_text()
    assert all("Read-only file system" in f.message for f in tests.findings), verdict.to_text()
    assert "sorte-no-file-write" in rules(verdict, "security"), verdict.to_text()
    assert not target.exists()
    assert "hacked" not in (repo / MOMENTUM).read_text()


def test_fail_fast_stops_the_sandboxed_gates(settings: Settings, repo: Path) -> None:
    fast = settings.model_copy(update={"guardian": settings.guardian.model_copy(update={"fail_fast": True})})
    branch(repo, "fail-fast", {"tests/test_cli.py": None, MOMENTUM: strategy_with(repo, "x = 1")[MOMENTUM]})
    verdict = validate(fast, "fail-fast")
    assert verdict.overall == "fail"
    assert verdict.gate("integrity").status == "fail"
    # Pytest and the backtests need seconds in their containers; hashing fails the candidate first.
    assert verdict.gate("tests").status == "skipped", verdict.to_text()
    assert verdict.gate("benchmark").status == "skipped", verdict.to_text()
    assert verdict.gate("tests").summary == "stopped: integrity failed first"
    assert owned_containers() == []


def test_ctrl_c_stops_the_containers_and_cleans_up(repo: Path, tmp_path: Path) -> None:
    branch(repo, "interrupted", strategy_with(repo, "while True:\n    pass"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    env |= {
        "SORTE_GIT__REPO_ROOT": str(repo),
        "SORTE_DATA_DIR": str(tmp_path / "var"),
        "SORTE_SANDBOX": "docker",
        "SORTE_GUARDIAN__TESTS_TIMEOUT_S": "600",  # only the interrupt can end it in time
        "SORTE_GUARDIAN__BENCHMARK_TIMEOUT_S": "600",
    }
    temp_root = tmp_path / "tmp"  # private: other processes may be validating at the same time
    temp_root.mkdir()
    env["TMPDIR"] = str(temp_root)
    code = "from sorte.cli.main import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "validate", "interrupted"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(owned_containers(proc.pid)) < 2:  # the tests and benchmark runs are looping
            assert proc.poll() is None, "sorte validate ended before its gates started"
            assert time.monotonic() < deadline, "the sandboxed gates did not start"
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert owned_containers(proc.pid) == []
    assert list(temp_root.glob("sorte-validate-*")) == [], "the exported trees were left behind"
