"""Bad-input cases against the local fallback backend (rlimited subprocess)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import sandbox
from sandbox import LocalSandbox, SandboxLimits, SandboxResult, get_backend
from sandbox.contract import MIB
from sandbox.local_backend import interpreter_under_tmp

# With its private /tmp the local backend would hide an interpreter installed under /tmp (a
# checkout in /tmp): there it runs on the shared /tmp, which these isolation tests reject.
pytestmark = pytest.mark.skipif(interpreter_under_tmp(), reason="interpreter under /tmp: no private /tmp")

FAST = SandboxLimits(timeout_s=5, memory_bytes=512 * MIB, pids=64)


@pytest.fixture
def backend() -> LocalSandbox:
    return LocalSandbox()


def run(backend: LocalSandbox, worktree: Path, *args: str, limits: SandboxLimits = FAST) -> SandboxResult:
    return backend.run(["python", *args], worktree, limits)


def test_loop_forever_is_killed_at_the_timeout(backend: LocalSandbox, worktree: Path) -> None:
    result = run(backend, worktree, "loop.py", limits=FAST.model_copy(update={"timeout_s": 2}))
    assert result.timed_out
    assert result.exit_code == -9
    assert not result.ok


def test_allocating_30_gb_fails(backend: LocalSandbox, worktree: Path) -> None:
    result = run(backend, worktree, "alloc.py", limits=FAST.model_copy(update={"memory_bytes": 256 * MIB}))
    assert not result.ok
    assert "ALLOCATED" not in result.stdout
    assert result.oom_killed or "MemoryError" in result.stderr


def test_fork_bomb_is_contained(backend: LocalSandbox, worktree: Path, host_still_forks: Callable[[], bool]) -> None:
    result = run(backend, worktree, "forkbomb.py", limits=FAST.model_copy(update={"timeout_s": 3, "pids": 32}))
    assert not result.ok
    assert host_still_forks()


@pytest.mark.skipif(not sandbox.can_unshare_network(), reason="needs root for a network namespace")
def test_sockets_to_the_internet_and_host_fail(
    backend: LocalSandbox, worktree: Path, host_listener: tuple[int, Callable[[], bool]]
) -> None:
    port, connected = host_listener
    result = run(backend, worktree, "net.py", str(port))
    assert result.network_isolated
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "CONNECTED" not in result.stdout
    assert not connected()


def test_without_network_namespace_the_result_says_so(
    backend: LocalSandbox, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.local_backend.can_unshare_network", lambda: False)
    result = run(backend, worktree, "-c", "print('hi')")
    assert not result.network_isolated
    assert any("network not isolated" in w for w in result.warnings)


@pytest.mark.skipif(os.geteuid() != 0 and os.access("/etc/shadow", os.R_OK), reason="shadow readable by this user")
def test_reading_etc_shadow_is_refused(backend: LocalSandbox, worktree: Path) -> None:
    result = run(backend, worktree, "shadow.py")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "SHADOW" not in result.stdout


def test_host_environment_is_not_visible(backend: LocalSandbox, worktree: Path, secret_env: str) -> None:
    result = run(backend, worktree, "env.py", str(os.getpid()))
    assert result.exit_code == 0, result.stderr
    assert secret_env not in result.stdout
    assert secret_env not in result.stderr


def test_writes_outside_tmp_fail(backend: LocalSandbox, worktree: Path) -> None:
    result = run(backend, worktree, "write.py")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "TMP_OK" in result.stdout
    assert result.outputs == {"note.txt": "TMP_OK"}
    for path in ["/usr/sorte_sandbox_evil", "/etc/sorte_sandbox_evil", "/sorte_sandbox_evil"]:
        assert not Path(path).exists()
    assert not (worktree / "sorte_sandbox_evil").exists()


def test_deleting_the_tests_fails(backend: LocalSandbox, worktree: Path) -> None:
    result = run(backend, worktree, "delete.py")
    assert result.exit_code == 4, result.stdout + result.stderr
    assert "DELETED" not in result.stdout
    assert (worktree / "test_ok.py").exists()
    assert (worktree / "tests" / "test_more.py").exists()


def test_pytest_passes_and_junit_comes_back(backend: LocalSandbox, worktree: Path) -> None:
    limits = FAST.model_copy(update={"timeout_s": 60})
    result = backend.run(
        ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml={out}/junit.xml", "test_ok.py"],
        worktree,
        limits,
    )
    assert result.ok, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert 'tests="1"' in result.outputs["junit.xml"]
    assert 'failures="0"' in result.outputs["junit.xml"]


def test_plain_dict_limits_and_explicit_env(backend: LocalSandbox, worktree: Path) -> None:
    result = backend.run(
        ["python", "-c", "import os; print(os.environ['GATE_FLAG'], os.environ['HOME'])"],
        worktree,
        {"timeout_s": 10, "env": {"GATE_FLAG": "on"}, "unknown_key": 1},
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split()[0] == "on"


def test_stdout_is_bounded(backend: LocalSandbox, worktree: Path) -> None:
    limits = FAST.model_copy(update={"max_stream_bytes": 1000})
    result = run(backend, worktree, "-c", "print('x' * 100000)", limits=limits)
    assert result.stdout_truncated
    assert len(result.stdout) < 2000


def test_get_backend_local_and_unknown() -> None:
    assert isinstance(get_backend("local"), LocalSandbox)
    with pytest.raises(ValueError):
        get_backend("nope")  # type: ignore[arg-type]


def test_auto_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.select.docker_available", lambda: False)
    with capture_logs() as logs:
        backend = get_backend("auto")
    assert isinstance(backend, LocalSandbox)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings and warnings[0]["event"] == "sandbox.fallback_to_local"


def test_docker_mode_without_engine_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.select.docker_available", lambda: False)
    with pytest.raises(sandbox.SandboxUnavailable):
        get_backend("docker")
