"""What every node of a run works with besides the state: the settings, the model client, the
progress callback and the reader of the trading figures. Not checkpointed: a resumed run gets
the ones of the process that resumes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sorte.config import Settings

#: A node's progress for a front-end: (node, event, details).
Event = Callable[[str, str, dict], None]


class Reader(Protocol):
    """The trading figures of the status and PnL answers. The service layer passes its own reading in
    (its ``reading`` module): it sits above the agent, which must not import it."""

    def overview(self, settings: Settings) -> Any: ...

    def profit(self, settings: Settings) -> Any: ...

    def positions(self, settings: Settings) -> Sequence[Any]: ...


def _quiet(node: str, event: str, info: dict) -> None:
    return None


@dataclass(frozen=True)
class Context:
    settings: Settings
    llm: Any
    on_event: Event = field(default=_quiet)
    reader: Reader | None = None
