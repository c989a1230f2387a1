"""The front-ends: the Telegram bot and the status page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

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
