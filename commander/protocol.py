"""The line protocol between the commander and a slot process: one JSON object per line
over a Unix socket (the same for local processes and Docker containers).

Commander -> slot (``op``), each answered by exactly one message:
    role   {"role": "active" | "shadow", "epoch": int, "settings": {...}}  -> ready | fault
    step   {"tick": int, "bars": [[symbol, seq, ts, o, h, l, c, v], ...], "entries": bool,
            "feed_gap": bool}  (feed_gap: the commander saw the gap in its feed and reported it)
                                                                           -> done | fault
    stop   {}                                                              -> bye
Slot -> commander, unasked: ``hello`` once after connecting, ``hb`` every heartbeat period.

Times (``t``) are ``time.monotonic()`` seconds: one clock for every process on the host.
"""

from __future__ import annotations

import json
from typing import Any

from sorte.runtime.models import Bar

MAX_LINE = 64 * 1024 * 1024  # a step of many symbols, or a settings payload, fits


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"a protocol message is a JSON object, got {type(message).__name__}")
    return message


def bar_row(bar: Bar) -> list[Any]:
    return [bar.symbol, bar.seq, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume]


def row_bar(row: list[Any]) -> Bar:
    symbol, seq, ts, o, h, low, c, v = row
    return Bar(str(symbol), int(seq), float(ts), float(o), float(h), float(low), float(c), float(v))


#: Secrets a slot never needs (it trades; it does not talk to Telegram, GitHub or web users).
FRONT_END_SECRETS = (("telegram", "token"), ("github", "token"), ("web", "token"))


def settings_payload(settings: Any) -> dict[str, Any]:
    """The commander's effective settings for a slot, with the secrets trading needs (exchange and
    LLM keys) and without the front-ends' tokens: they travel only over the private socket and are
    never written or logged (``Settings`` masks them when printed)."""
    from pathlib import Path

    from pydantic import SecretStr

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    payload = plain(settings.model_dump())
    for section, field in FRONT_END_SECRETS:
        if isinstance(payload.get(section), dict) and field in payload[section]:
            payload[section][field] = None
    return payload
