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
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sorte.errors import ConfigError
from sorte.settings.changes import AgentSettings, GitHubSettings, GitSettings, GuardianSettings
from sorte.settings.commander import AnalysisSettings, CommanderSettings
from sorte.settings.frontends import Role, TelegramSettings, WebSettings
from sorte.settings.knowledge import MINILM_MODEL, OLLAMA_EMBED_MODEL, KnowledgeSettings
from sorte.settings.llm import (
    EMBEDDED_MODEL,
    EMBEDDINGS_PROVIDER,
    OLLAMA_MODELS,
    ROLES,
    LLMSettings,
    ProviderSettings,
    RoleSettings,
    RoleTarget,
)
from sorte.settings.market import MarketSettings, PairsSettings
from sorte.settings.trading import BrokerSettings, ExchangeSettings, RiskSettings, RuntimeSettings

# The component settings live in sorte.settings; callers import them from here, with Settings.
__all__ = [
    "EMBEDDED_MODEL",
    "EMBEDDINGS_PROVIDER",
    "MAX_HOLD_S",
    "MINILM_MODEL",
    "MIN_HOLD_S",
    "OLLAMA_EMBED_MODEL",
    "OLLAMA_MODELS",
    "REPO_ROOT",
    "ROLES",
    "AgentSettings",
    "AnalysisSettings",
    "BrokerSettings",
    "CommanderSettings",
    "ExchangeSettings",
    "GitHubSettings",
    "GitSettings",
    "GuardianSettings",
    "KnowledgeSettings",
    "LLMSettings",
    "MarketSettings",
    "PairsSettings",
    "ProviderSettings",
    "RiskSettings",
    "Role",
    "RoleSettings",
    "RoleTarget",
    "RuntimeSettings",
    "Settings",
    "TelegramSettings",
    "WebSettings",
    "clamp_hold",
    "load_settings",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_HOLD_S = 5.0
MAX_HOLD_S = 90.0


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
    market: MarketSettings = Field(default_factory=MarketSettings)
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
