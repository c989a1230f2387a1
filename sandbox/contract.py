"""Pydantic models shared by every sandbox backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

GIB = 1024**3
MIB = 1024**2

#: Where the candidate finds its writable scratch space and its output dir (inside the sandbox).
SANDBOX_TMP = "/tmp"
SANDBOX_OUTPUT_DIR = "/tmp/out"
#: Where the candidate worktree is mounted read-only inside a container.
SANDBOX_WORKTREE = "/workspace"
#: Token that a command may use for the output dir; each backend substitutes its real path.
OUT_TOKEN = "{out}"
#: Label carried by every sandbox container (used to find and remove leftovers).
SANDBOX_LABEL = "sorte.sandbox"


class SandboxLimits(BaseModel):
    """Resource limits of one sandboxed run (unknown keys are ignored, so a plain dict works too)."""

    model_config = ConfigDict(extra="ignore")

    memory_bytes: int = Field(default=GIB, gt=0)
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=128, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    tmpfs_bytes: int = Field(default=256 * MIB, gt=0)
    #: Bound on stdout and stderr each (bytes kept; the rest is cut and marked).
    max_stream_bytes: int = Field(default=MIB, gt=0)
    #: Bound on each output file read back, and on all of them together.
    max_output_file_bytes: int = Field(default=4 * MIB, gt=0)
    max_outputs_bytes: int = Field(default=16 * MIB, gt=0)
    max_output_files: int = Field(default=64, gt=0)
    #: Extra variables the *caller* sets explicitly (never copied from the host environment).
    env: dict[str, str] = Field(default_factory=dict)


def coerce_limits(limits: SandboxLimits | dict[str, Any] | None) -> SandboxLimits:
    """Accept a SandboxLimits, a plain dict (e.g. ``{"timeout_s": 60}``) or None (defaults)."""
    if limits is None:
        return SandboxLimits()
    if isinstance(limits, SandboxLimits):
        return limits
    return SandboxLimits.model_validate(dict(limits))


#: The brief's name for the same thing.
SandboxSpec = SandboxLimits


class SandboxResult(BaseModel):
    """What a sandboxed command did."""

    backend: str
    #: The command's exit status; -9 when it was killed at the timeout (``timed_out`` says so).
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    oom_killed: bool = False
    duration_s: float = 0.0
    #: Files the command wrote under the output dir: relative name -> text (bounded).
    outputs: dict[str, str] = Field(default_factory=dict)
    outputs_truncated: bool = False
    #: False when the backend could not cut the network (local backend without `unshare -n`).
    network_isolated: bool = True
    #: Anything the caller should know about weaker isolation.
    warnings: list[str] = Field(default_factory=list)
    #: Stopped by ``cancel_all`` (the caller no longer needs the result).
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@runtime_checkable
class SandboxBackend(Protocol):
    """Runs a command against a candidate worktree under isolation and limits."""

    name: str

    def run(
        self, command: list[str], worktree: Path, limits: SandboxLimits | dict[str, Any] | None = None
    ) -> SandboxResult: ...

    def cancel_all(self) -> None:
        """Stop every run of this backend instance, now and later (they return ``cancelled``)."""
        ...


def truncate_text(data: bytes, limit: int) -> tuple[str, bool]:
    """Decode at most ``limit`` bytes (replacing bad UTF-8); say whether anything was cut."""
    cut = len(data) > limit
    text = data[:limit].decode("utf-8", errors="replace")
    if cut:
        text += f"\n[... truncated {len(data) - limit} bytes]"
    return text, cut


def read_outputs(out_dir: Path, limits: SandboxLimits) -> tuple[dict[str, str], bool]:
    """Read the regular files under ``out_dir`` (no symlinks followed), within the limits."""
    outputs: dict[str, str] = {}
    truncated = False
    total = 0
    if not out_dir.is_dir():
        return outputs, False
    for path in sorted(out_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if len(outputs) >= limits.max_output_files or total >= limits.max_outputs_bytes:
            truncated = True
            break
        budget = min(limits.max_output_file_bytes, limits.max_outputs_bytes - total)
        with path.open("rb") as fh:
            data = fh.read(budget + 1)
        text, cut = truncate_text(data, budget)
        truncated = truncated or cut
        total += min(len(data), budget)
        outputs[path.relative_to(out_dir).as_posix()] = text
    return outputs, truncated


def fixed_env(
    worktree: str, tmp: str, out_dir: str, extra_path: list[str], extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The only environment a sandboxed command sees: nothing comes from the host."""
    path = ":".join([*extra_path, "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        **{str(k): str(v) for k, v in (extra or {}).items()},
        "PATH": path,
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": worktree,
        "PYTHONUNBUFFERED": "1",
        "SORTE_OUTPUT_DIR": out_dir,
    }
