"""The pair rotation's choice of symbols against the active slot's last reported book (the
feed, the selector and the state stand in: the rotation on a real commander and a real
exchange is in test_live_feed.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from commander.pairs import PairRotation


class Feed:
    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols

    async def set_symbols(self, symbols: list[str]) -> list[str]:
        added = sorted(set(symbols) - set(self.symbols))
        self.symbols = list(symbols)
        return added


class Alerts:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, str, dict[str, Any]]] = []

    def emit(self, kind: str, message: str, **fields: Any) -> None:
        self.emitted.append((kind, message, fields))


def rotation(chosen: list[str], trading: list[str]) -> tuple[PairRotation, SimpleNamespace]:
    active = SimpleNamespace(last_done=SimpleNamespace(book={"positions": {}, "order_symbols": []}))
    state = SimpleNamespace(feed=Feed(trading), joining=set(), alerts=Alerts(), tick=7, active_run=lambda: active)
    pairs = PairRotation(state, SimpleNamespace(last=SimpleNamespace(symbols=chosen)))  # type: ignore[arg-type]
    return pairs, state


def test_a_dropped_symbol_with_a_resting_order_stays_until_the_order_is_gone() -> None:
    pairs, state = rotation(["BTC/USDT", "SOL/USDT"], ["BTC/USDT", "ETH/USDT"])
    state.active_run().last_done.book["order_symbols"] = ["ETH/USDT"]  # a limit order may still fill
    asyncio.run(pairs.apply())
    assert state.feed.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    kind, message, fields = state.alerts.emitted[-1]
    assert kind == "pairs_changed" and fields["kept"] == ["ETH/USDT"] and fields["dropped"] == []
    assert "kept until their positions and orders close: ETH/USDT" in message
    assert state.joining == {"SOL/USDT"}

    state.active_run().last_done.book["order_symbols"] = []  # filled into a position
    state.active_run().last_done.book["positions"] = {"ETH/USDT": {}}
    asyncio.run(pairs.apply())
    assert state.feed.symbols == ["BTC/USDT", "ETH/USDT", "SOL/USDT"] and len(state.alerts.emitted) == 1

    state.active_run().last_done.book["positions"] = {}  # closed: now it goes
    asyncio.run(pairs.apply())
    assert state.feed.symbols == ["BTC/USDT", "SOL/USDT"]
    assert state.alerts.emitted[-1][2]["dropped"] == ["ETH/USDT"]


def test_a_book_without_orders_or_positions_trades_the_selection_only() -> None:
    pairs, state = rotation(["BTC/USDT"], ["BTC/USDT", "ETH/USDT"])
    asyncio.run(pairs.apply())
    assert state.feed.symbols == ["BTC/USDT"] and state.alerts.emitted[-1][2]["dropped"] == ["ETH/USDT"]
