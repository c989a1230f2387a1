"""The local sandbox with an interpreter under /tmp (a checkout in /tmp): no private /tmp, the
scratch dir used by path, and the output paths a gate names still pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox.local_backend as local_backend
from sandbox import LocalSandbox, SandboxLimits
from sandbox.contract import MIB, OUT_TOKEN, SANDBOX_OUTPUT_DIR

WRITE = (
    "import pathlib, sys\n"
    "pathlib.Path(sys.argv[1]).write_text('by token')\n"
    "pathlib.Path(sys.argv[2]).write_text('by path')\n"
)


def test_outputs_reach_the_scratch_dir_when_tmp_is_shared(worktree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_backend, "interpreter_under_tmp", lambda: True)
    (worktree / "write.py").write_text(WRITE)
    limits = SandboxLimits(timeout_s=30, memory_bytes=512 * MIB, pids=64)
    result = LocalSandbox().run(
        ["python", "write.py", f"{OUT_TOKEN}/a.txt", f"{SANDBOX_OUTPUT_DIR}/b.txt"], worktree, limits
    )
    assert result.exit_code == 0, result.stderr
    assert result.outputs == {"a.txt": "by token", "b.txt": "by path"}


def test_one_pass_rewrite_never_doubles_the_path(tmp_path: Path) -> None:
    out = tmp_path / "sorte-sandbox-local-x" / "tmp" / "out"
    assert local_backend._shared_tmp_arg(f"--junitxml={OUT_TOKEN}/r.xml", out) == f"--junitxml={out}/r.xml"
    assert local_backend._shared_tmp_arg(f"{SANDBOX_OUTPUT_DIR}/side.json", out) == f"{out}/side.json"
