"""The line protocol between the commander and a slot process: one JSON object per line
over a Unix socket (the same for local processes and Docker containers), each a model here.

Commander -> slot (``op``), each answered by exactly one message:
    role   ``RoleOp``  -> ``Ready`` | ``Fault``  (``warmup``: a live feed's history)
    step   ``StepOp``  -> ``Done`` | ``Fault``  (``feed_gap``: the commander saw the gap in
                                                 its feed and reported it; ``orders``: on a
                                                 live account, what the exchange says of the
                                                 active book's open orders)
    stop   ``StopOp``  -> ``Bye``
Slot -> commander, unasked: ``Hello`` once after connecting, ``Heartbeat`` every period.

On a live account (``runtime.mode=live``) the active slot never reaches the exchange: the
orders its step placed come back in ``Done.orders`` (``OrderIntent``), committed to the ledger
first, and the commander's gateway sends them under the lease epoch (``commander.gateway``).

Each side validates what it reads: a message that is not one of these is a fault of the
sender, like garbage on the channel. The active slot's ``SlotSnapshot`` goes to the
front-ends through a file, not this channel.

Times (``t``) are ``time.monotonic()`` seconds: one clock for every process on the host.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sorte.runtime.values import Bar

MAX_LINE = 64 * 1024 * 1024  # a step of many symbols, or a settings payload, fits


Role = Literal["active", "shadow"]


class Message(BaseModel):
    # A slot runs its deployment's commit, often newer than the commander: a field the newer
    # side added is ignored, not refused.
    model_config = ConfigDict(extra="ignore")


# -- commander -> slot ---------------------------------------------------------------------
class Warmup(BaseModel):
    """A live feed's history for a slot's warm-up: it never asks the exchange itself."""

    interval_s: float
    bars: dict[str, list[list[float]]]  # symbol -> [seq, ts, open, high, low, close, volume], oldest first


class OrderReport(BaseModel):
    """The exchange's view of one of the active book's open orders, as the gateway last saw it.

    ``status``: open | closed | canceled | expired | rejected as ccxt says, or ``missing`` (the
    exchange does not know the id: it never got there) or ``refused`` (the gateway did not send
    it: ``reason`` says why)."""

    client_order_id: str
    status: str
    filled: float = 0.0
    average: float | None = None  # mean fill price
    fee: float | None = None  # in quote currency; None: unknown (the configured rate is kept)
    reason: str = ""

    @property
    def final(self) -> bool:
        return self.status not in ("open", "new")


class OrderIntent(BaseModel):
    """What the active slot asks the exchange for: place an order it committed, or cancel one."""

    action: Literal["place", "cancel"]
    client_order_id: str
    symbol: str
    side: int = 0  # +1 buy, -1 sell
    qty: float = 0.0
    kind: str = "market"
    limit_price: float | None = None


class RoleOp(Message):
    op: Literal["role"] = "role"
    role: Role
    epoch: int = 0
    settings: dict[str, Any]  # ``settings_payload``
    warmup: Warmup | None = None  # on a live feed: the history before the last bar sent
    orders: list[OrderReport] | None = None  # a live account's active role: the exchange's view of its open orders


class StepOp(Message):
    op: Literal["step"] = "step"
    tick: int
    bars: list[list[Any]]  # ``bar_row`` each
    entries: bool = True  # False: a hand-over's last step on the active slot, no new entries
    feed_gap: bool = False
    warmup: Warmup | None = None  # symbols whose first bar is in this step: their history before it
    orders: list[OrderReport] | None = None  # a live account's active slot: the exchange's view


class StopOp(Message):
    op: Literal["stop"] = "stop"


Op = Annotated[RoleOp | StepOp | StopOp, Field(discriminator="op")]


# -- slot -> commander ---------------------------------------------------------------------
class Hello(Message):
    ev: Literal["hello"] = "hello"
    slot: str
    deployment: int
    token: str  # what the commander gave it: a stale process cannot pose as this one
    pid: int


class Heartbeat(Message):
    ev: Literal["hb"] = "hb"
    t: float


class Ready(Message):
    """The role is taken: the runtime is built on the book in the ledger."""

    ev: Literal["ready"] = "ready"
    role: Role
    epoch: int
    cursor: dict[str, int]  # the last bar seq per symbol the book includes
    book: dict[str, Any]  # ``commander.slot.book``: compared whole across a hand-over
    t: float
    orders: list[OrderIntent] = []  # orders the exchange never got, placed again (committed) under this epoch


class Done(Message):
    """A step is done (and, on the active slot, committed to the ledger)."""

    ev: Literal["done"] = "done"
    tick: int
    role: Role
    latency_ms: float
    errors: int  # decision-path errors absorbed in the step (LLM fallbacks)
    equity: float
    pnl: float
    book: dict[str, Any]
    cursor: dict[str, int]
    t_recv: float  # when the step arrived
    t: float
    orders: list[OrderIntent] = []  # a live account's active slot: committed, for the gateway to send


class Fault(Message):
    """The slot cannot go on (``kind``: stale_epoch, order_path, decision_path, gap, broken,
    no_role, start; the commander's own: crash, protocol); it takes no further step."""

    ev: Literal["fault"] = "fault"
    kind: str
    detail: str
    tick: int | None = None
    traceback: str = ""

    def describe(self) -> str:
        return f"{self.kind}: {self.detail}"


class Bye(Message):
    ev: Literal["bye"] = "bye"


SlotMessage = Annotated[Hello | Heartbeat | Ready | Done | Fault | Bye, Field(discriminator="ev")]
Reply = Hello | Ready | Done | Fault | Bye  # what a request may get back (a Hello only from a confused slot)
_SLOT_MESSAGE: TypeAdapter[Hello | Heartbeat | Ready | Done | Fault | Bye] = TypeAdapter(SlotMessage)
_OP: TypeAdapter[RoleOp | StepOp | StopOp] = TypeAdapter(Op)


def encode(message: Message) -> bytes:
    # json rather than pydantic's own writer: a NaN equity stays NaN (pydantic writes null),
    # for the analysis to see it.
    return json.dumps(message.model_dump(), separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"a protocol message is a JSON object, got {type(message).__name__}")
    return message


def read_slot_message(line: bytes) -> Hello | Heartbeat | Ready | Done | Fault | Bye:
    """A slot's message; ValueError (pydantic's ValidationError is one) when it is none."""
    return _SLOT_MESSAGE.validate_python(decode(line))


def read_op(line: bytes) -> RoleOp | StepOp | StopOp:
    """The commander's message; ValueError when it is none."""
    return _OP.validate_python(decode(line))


class StageFigures(BaseModel):
    """One cascade stage since the slot took its role, as the runtime's metrics count it."""

    stage: str
    passes: int
    discards: int
    # (upper bound in seconds, steps whose mean evaluation time was at most that), cumulative
    # like a Prometheus histogram's buckets; ``latency_count`` is its +Inf bucket.
    latency_buckets: list[tuple[float, int]] = []
    latency_count: int = 0


class SlotSnapshot(BaseModel):
    """What the active slot tells the front-ends between steps (``commander.slot_report``)."""

    at: float  # time.time() when written: an old one is not shown as current
    slot: str
    deployment: str
    tick: int
    equity: float
    last_close: dict[str, float] = {}
    stages: list[StageFigures] = []  # in the cascade's order
    llm_cache_hit_rate: float | None = None  # None when no LLM stage asks a model
    metrics: str = ""  # the runtime's Prometheus exposition, for the /metrics page


def describe_reply(reply: Reply) -> str:
    """Why a reply is not the one asked for."""
    return reply.describe() if isinstance(reply, Fault) else f"protocol: unexpected {reply.ev!r} message"


def bar_row(bar: Bar) -> list[Any]:
    return [bar.symbol, bar.seq, bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume]


def row_bar(row: list[Any]) -> Bar:
    symbol, seq, ts, o, h, low, c, v = row
    return Bar(str(symbol), int(seq), float(ts), float(o), float(h), float(low), float(c), float(v))


#: Secrets a slot never needs: it does not talk to Telegram, GitHub or web users, nor to the
#: exchange (the commander owns the market feed and sends the active slot's orders).
FRONT_END_SECRETS = (
    ("telegram", "token"),
    ("github", "token"),
    ("web", "token"),
    ("exchange", "api_key"),
    ("exchange", "api_secret"),
)


def settings_payload(settings: Any) -> dict[str, Any]:
    """The commander's effective settings for a slot, with the secrets its decisions need (LLM
    keys) and without the front-ends' tokens or the exchange's keys: they travel only over the
    private socket and are never written or logged (``Settings`` masks them when printed)."""
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
