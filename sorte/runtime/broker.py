"""Brokers. The paper broker simulates fills; the live broker sends orders through ccxt.

Fill model (paper, also used by backtests): an order decided on bar ``t`` fills on the next
bar of its symbol. Market orders fill at that bar's open plus adverse slippage; limit
orders fill when the bar trades through the limit, at the better of open and limit, and
expire after ``ttl_bars``. Protective stop-loss and take-profit exits rest at the broker
and trigger on the bar's low/high (stop first when both are touched: the conservative
reading), at the trigger price or the open if the bar gapped through it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import numpy as np

from sorte.config import BrokerSettings
from sorte.runtime.values import BUY, SELL, Bar, Fill, Order, Position


class Broker(Protocol):
    cash: float
    positions: dict[str, Position]

    def submit(self, order: Order) -> None: ...

    def on_bar(self, bar: Bar) -> list[Fill]: ...

    def has_pending(self, symbol: str) -> bool: ...

    def equity(self) -> float: ...


def protective_trigger(bar: Bar, pos: Position) -> str | None:
    """Which resting exit of ``pos`` the bar reaches: "stop_loss" first when both are (the
    conservative reading), "take_profit", or None."""
    long = pos.qty > 0
    if pos.stop_price and (bar.low <= pos.stop_price if long else bar.high >= pos.stop_price):
        return "stop_loss"
    if pos.take_price and (bar.high >= pos.take_price if long else bar.low <= pos.take_price):
        return "take_profit"
    return None


def exit_order(bar: Bar, pos: Position, cid: str, purpose: str) -> Order:
    """A market order closing ``pos`` on ``bar``."""
    return Order(cid, bar.symbol, -pos.side, abs(pos.qty), "market", purpose, pos.strategy, bar.seq, bar.ts, purpose)


class PaperBroker:
    def __init__(self, settings: BrokerSettings) -> None:
        self.fee_rate = settings.fee_bps / 10_000
        self.slip_rate = settings.slippage_bps / 10_000
        self.cash = settings.initial_cash
        self.positions: dict[str, Position] = {}
        self.pending: dict[str, list[Order]] = defaultdict(list)
        self.last_price: dict[str, float] = {}
        self.realized_pnl = 0.0
        self.fees_paid = 0.0

    # -- account ------------------------------------------------------------------------
    def equity(self) -> float:
        value, last_price = self.cash, self.last_price
        for sym, pos in self.positions.items():
            value += pos.qty * last_price.get(sym, pos.entry_price)
        return value

    def gross_exposure(self) -> float:
        last_price = self.last_price
        total: float = 0
        for sym, pos in self.positions.items():
            total += abs(pos.qty) * last_price.get(sym, pos.entry_price)
        return total

    def has_pending(self, symbol: str) -> bool:
        return bool(self.pending.get(symbol))

    def needs_bar(self, symbol: str) -> bool:
        """False when ``on_bar`` for this symbol could do nothing but mark its price."""
        if self.pending.get(symbol):
            return True
        pos = self.positions.get(symbol)
        return pos is not None and bool(pos.stop_price or pos.take_price)

    def protective_trigger(self, symbol: str, low, high, start: int) -> int | None:
        """First index >= ``start`` of the given bars where a resting stop or take-profit of
        the symbol's position would trigger; None if none does."""
        pos = self.positions.get(symbol)
        if pos is None or not (pos.stop_price or pos.take_price):
            return None
        stop, take, long = pos.stop_price, pos.take_price, pos.qty > 0
        n, size = len(low), 32
        while start < n:  # look a little ahead first, then further: exits tend to come soon
            end = min(n, start + size)
            lo, hi = low[start:end], high[start:end]
            if long:
                hit = (lo <= stop) if stop else np.zeros(len(lo), bool)
                if take:
                    hit |= hi >= take
            else:
                hit = (hi >= stop) if stop else np.zeros(len(hi), bool)
                if take:
                    hit |= lo <= take
            idx = np.flatnonzero(hit)
            if len(idx):
                return int(idx[0]) + start
            start, size = end, size * 4
        return None

    def open_orders(self) -> list[Order]:
        return [o for orders in self.pending.values() for o in orders]

    def take_placed(self) -> list[Order]:
        """Orders the broker placed on its own since the last call (a protective exit resting at
        an exchange): the runtime commits them with the step. A paper exit fills at once."""
        return []

    # -- orders -------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        self.pending[order.symbol].append(order)

    def restore(self, order: Order) -> None:
        """An open order of the ledger, after a restart: pending again (a live broker looks
        it up at the exchange first)."""
        self.submit(order)

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fill what the bar allows, then trigger protective exits; mark the price."""
        sym = bar.symbol
        fills: list[Fill] = []
        queue = self.pending.get(sym)
        if queue:  # pending orders, oldest first
            keep: list[Order] = []
            for order in queue:
                price: float | None
                if order.kind == "market":
                    price = bar.open * (1 + order.side * self.slip_rate)
                else:
                    price = self._fill_price(order, bar)
                    if price is None:
                        order.ttl_bars -= 1
                        if order.ttl_bars == 0:
                            order.status = "expired"
                        else:
                            keep.append(order)
                        continue
                order.status = "filled"
                fills.append(
                    self._apply(
                        order.client_order_id, bar, order.side, order.qty, price, order.purpose, order.strategy, order
                    )
                )
            queue[:] = keep
        pos = self.positions.get(sym)
        if pos is not None and (pos.stop_price or pos.take_price):
            exit_fill = self._protective_exit(bar, pos)
            if exit_fill is not None:
                fills.append(exit_fill)
        self.last_price[sym] = bar.close
        return fills

    def _fill_price(self, order: Order, bar: Bar) -> float | None:
        if order.kind == "market":
            return bar.open * (1 + order.side * self.slip_rate)
        if order.side == BUY:
            return min(bar.open, order.limit_price) if bar.low <= order.limit_price else None
        return max(bar.open, order.limit_price) if bar.high >= order.limit_price else None

    def _protective_exit(self, bar: Bar, pos: Position) -> Fill | None:
        long = pos.qty > 0
        stop, take = pos.stop_price, pos.take_price
        price: float | None = None
        purpose = ""  # set with the price
        if stop and (bar.low <= stop if long else bar.high >= stop):
            price = min(bar.open, stop) if long else max(bar.open, stop)
            purpose = "stop_loss"
        elif take and (bar.high >= take if long else bar.low <= take):
            price = max(bar.open, take) if long else min(bar.open, take)
            purpose = "take_profit"
        if price is None:
            return None
        side = -pos.side
        price *= 1 + side * self.slip_rate
        cid = f"{pos.strategy}:{bar.symbol}:{bar.seq}:{purpose}"
        # A resting stop that fires closes the position; orders queued against it are moot.
        self.pending.pop(bar.symbol, None)
        return self._apply(cid, bar, side, abs(pos.qty), price, purpose, pos.strategy, None)

    def _apply(
        self, cid: str, bar: Bar, side: int, qty: float, price: float, purpose: str, strategy: str, order: Order | None
    ) -> Fill:
        fee = qty * price * self.fee_rate
        self.cash -= side * qty * price + fee
        self.fees_paid += fee
        sym, positions = bar.symbol, self.positions
        pos = positions.get(sym)
        realized = 0.0
        if pos is None:
            positions[sym] = self._new_position(bar, side * qty, price, strategy, order)
        else:
            held = pos.qty
            long = held > 0
            if (BUY if long else SELL) == side:  # adding to a position: average the entry
                total = held + side * qty
                pos.entry_price = (pos.entry_price * held + price * side * qty) / total
                pos.qty = total
            else:
                size = abs(held)
                closed = qty if qty < size else size  # min(size, qty)
                realized = closed * (price - pos.entry_price) * (BUY if long else SELL)
                remaining = held + side * qty
                if abs(remaining) < 1e-12:
                    del positions[sym]
                elif (remaining > 0) == long:
                    pos.qty = remaining
                else:  # flipped through zero: the rest opens a new position at this price
                    positions[sym] = self._new_position(bar, remaining, price, strategy, order)
        pnl = realized - fee
        self.realized_pnl += pnl
        return Fill(cid, sym, side, qty, price, fee, bar.seq, bar.ts, purpose, strategy, pnl)

    def _charge_fee(self, fill: Fill, fee: float | None) -> None:
        """Replace the configured fee of ``fill`` with the one the exchange charged (if known)."""
        if fee is None or fee == fill.fee:
            return
        delta = fee - fill.fee
        self.cash -= delta
        self.fees_paid += delta
        self.realized_pnl -= delta
        fill.fee, fill.realized_pnl = fee, fill.realized_pnl - delta

    @staticmethod
    def _new_position(bar: Bar, qty: float, price: float, strategy: str, order: Order | None) -> Position:
        pos = Position(bar.symbol, qty, price, bar.seq, bar.ts, strategy)
        if order is not None:
            direction = 1 if qty > 0 else -1
            if order.stop_loss:
                pos.stop_price = price * (1 - direction * order.stop_loss)
            if order.take_profit:
                pos.take_price = price * (1 + direction * order.take_profit)
            pos.hold_until = bar.ts + order.hold_s
        return pos
