"""Executor: turns cascade decisions into orders, sized and checked against risk limits.

Rules, in order, for a decision on a symbol:
1. an order for the symbol is still pending: the decision is skipped (no double orders);
2. a position on the same side is held: nothing to do (no pyramiding);
3. a position on the other side is held: it is closed, unless its minimum hold time has
   not passed yet, in which case the decision is skipped;
4. a new position opens on the decision's side (shorts only when the broker allows them),
   sized as ``position_fraction`` of equity, capped so that hitting the stop loss costs at
   most ``max_loss_per_trade`` of equity, and vetoed by the risk manager's hard limits. It
   is a market order, or with ``order_type: limit`` a limit order ``limit_offset_bps``
   better than the decision price that expires after ``limit_ttl_bars``; exits are
   always market orders.

Client order ids are ``strategy:symbol:seq:leg``: the same decision retried produces the
same id, which the ledger refuses to store twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sorte.config import BrokerSettings, RiskSettings
from sorte.runtime.broker import PaperBroker
from sorte.runtime.risk import RiskManager
from sorte.runtime.values import BUY, Decision, Order


@dataclass(slots=True)
class ExecutionReport:
    orders: list[Order] = field(default_factory=list)
    skipped: str = ""  # why nothing (more) was done, "" when all went through


class Executor:
    def __init__(
        self, broker: PaperBroker, risk: RiskSettings, broker_settings: BrokerSettings, qty_step: float = 1e-8
    ) -> None:
        self.broker = broker
        self.limits = risk
        self.risk = RiskManager(risk)
        self.allow_short = broker_settings.allow_short
        self.qty_step = qty_step
        self.limit_entries = broker_settings.order_type == "limit"
        self.limit_offset = broker_settings.limit_offset_bps / 10_000
        self.limit_ttl = broker_settings.limit_ttl_bars

    def on_decision(self, d: Decision, recent_closes: dict[str, np.ndarray] | None = None) -> ExecutionReport:
        broker = self.broker
        symbol, side = d.symbol, d.side
        if broker.has_pending(symbol):
            return ExecutionReport([], "order pending")
        report = ExecutionReport([], "")
        held = broker.positions
        pos = held.get(symbol)
        if pos is not None:
            if pos.side == side:
                report.skipped = "already positioned"
                return report
            if d.ts < pos.hold_until:
                report.skipped = f"minimum hold until {pos.hold_until:.0f}"
                return report
            close = Order(
                f"{d.strategy}:{symbol}:{d.seq}:close",
                symbol,
                side,
                abs(pos.qty),
                "market",
                "close",
                d.strategy,
                d.seq,
                d.ts,
                d.reason,
            )
            broker.submit(close)
            report.orders.append(close)
        if side != BUY and not self.allow_short:
            report.skipped = report.skipped or "shorting disabled"
            return report

        # Open: size, then the risk manager's hard limits.
        limits = self.limits
        equity = broker.equity()
        # notional = min(position share, loss cap at the stop, position cap), in that order
        notional = equity * limits.position_fraction
        if d.stop_loss > 0:
            cap = equity * limits.max_loss_per_trade / d.stop_loss
            if cap < notional:
                notional = cap
        cap = equity * limits.max_position_fraction
        if cap < notional:
            notional = cap
        if pos is None:
            positions = held  # only read by the risk checks
            exposure = broker.gross_exposure()
        elif len(held) == 1:  # the position being closed was the only one
            positions, exposure = {}, 0.0
        else:  # the position being closed no longer counts
            positions = {s: p for s, p in held.items() if p is not pos}
            exposure = broker.gross_exposure() - abs(pos.qty) * broker.last_price.get(symbol, d.price)
        veto = self.risk.check_entry(symbol, side, notional, equity, positions, exposure, recent_closes)
        if veto is not None:
            report.skipped = f"risk veto {veto}"
            return report
        step = self.qty_step
        qty = math.floor(notional / d.price / step) * step
        if qty <= 0:
            report.skipped = "size rounds to zero"
            return report
        order = Order(
            f"{d.strategy}:{symbol}:{d.seq}:open",
            symbol,
            side,
            float(qty),
            "limit" if self.limit_entries else "market",
            "open",
            d.strategy,
            d.seq,
            d.ts,
            d.reason,
            d.price * (1 - side * self.limit_offset) if self.limit_entries else 0.0,
            d.stop_loss,
            d.take_profit,
            d.hold_s,
            self.limit_ttl if self.limit_entries else 0,
        )
        broker.submit(order)
        report.orders.append(order)
        return report
