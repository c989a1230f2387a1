"""The path of a change: the agent that plans it, git, the guardian that validates it, GitHub."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class GitSettings(BaseModel):
    """Where agent runs branch from and who commits them."""

    model_config = {"extra": "forbid"}

    repo_root: Path | None = Field(None, description="Repository of the strategies; None = the one holding them")
    base_branch: str | None = Field(None, description="Branch runs start from; None = main, else master")
    author_name: str = "Sorte"
    author_email: str = "sorte@localhost"
    merge_mode: Literal["ff", "merge"] = "ff"


class GuardianSettings(BaseModel):
    """What ``sorte validate`` runs on a candidate branch, and the limits of each sandboxed gate."""

    model_config = {"extra": "forbid"}

    baseline: str | None = Field(
        None, description="Ref the candidate is judged against; None = the base branch (git.base_branch)"
    )
    test_paths: list[str] = Field(
        default_factory=lambda: ["tests/strategies"],
        description=(
            "Test paths of the baseline the tests gate runs under guardian.harness (the strategy contract "
            "suite); they must reach strategies through a StrategyHost: one imported in process is an error"
        ),
    )
    test_args: list[str] = Field(default_factory=list, description="Extra pytest arguments, e.g. ['-m', 'not slow']")
    tests_timeout_s: float = Field(300.0, gt=0)
    security_timeout_s: float = Field(180.0, gt=0)
    benchmark_timeout_s: float = Field(300.0, gt=0)
    memory_mb: int = Field(2048, ge=256, description="Memory of the tests and benchmark containers")
    security_memory_mb: int = Field(4096, ge=1024, description="semgrep-core reserves far more than it uses")
    cpus: float = Field(1.0, gt=0, description="CPUs per sandboxed gate")
    pids: int = Field(256, ge=16)
    cache_baseline: bool = Field(True, description="Reuse the baseline's backtests for the same commit")
    fail_fast: bool = Field(True, description="Stop the other gates as soon as one fails the candidate")
    tolerances: dict[str, float] = Field(
        default_factory=dict, description="Benchmark tolerances (guardian.Tolerances fields), e.g. {sharpe: 0.2}"
    )


class GitHubSettings(BaseModel):
    """Where approved runs are pushed and opened as pull requests (both unset: local merge only)."""

    model_config = {"extra": "forbid"}

    repo: str | None = Field(None, description="owner/name on GitHub; None = do not publish")
    token: SecretStr | None = Field(None, description="From the environment or .env only (SORTE_GITHUB__TOKEN)")
    api_url: str = "https://api.github.com"
    remote_url: str | None = Field(None, description="Push URL; None = https://github.com/<repo>.git")

    @property
    def configured(self) -> bool:
        return bool(self.repo and self.token and self.token.get_secret_value())


class AgentSettings(BaseModel):
    """Who may command the agent and how hard it tries."""

    model_config = {"extra": "forbid"}

    allowed_senders: list[str] = Field(
        default_factory=lambda: ["cli:local"], description="channel:id of senders allowed to command the agent"
    )
    max_attempts: int = Field(2, ge=1, le=5, description="Validation attempts per run (1 + repairs)")
    plan_retries: int = Field(2, ge=0, le=5, description="Times an invalid plan goes back to the model")
    auto_approve: bool = Field(
        False, description="Approve passing parameter-only changes in paper mode without asking (never in live)"
    )
