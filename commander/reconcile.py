"""Reconciliation: does the account at the exchange say what the ledger says?

Run by the commander's gateway on every change of lease holder, before the new holder's first
order. Three readings of the exchange against the ledger:

- open orders: every open order at the exchange is one the ledger has open (a foreign or
  forgotten order would trade behind the book's back);
- fills since the last reconciliation: every one belongs to an order the gateway sent (fills
  of the ledger's open orders are not differences: the next step books them);
- balances: for the quote currency and each traded base asset, the balance when Sorte's book
  started on the account (the baseline) plus what the book did since, plus the fills still to
  be booked, is what the exchange holds, within ``tolerance`` (relative).

Anything else is a difference, said in words; one difference and the account does not trade.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ABS_TOLERANCE = 1e-8  # an exchange's smallest step of most assets
RECONCILIATION_FILE = "reconciliation.json"


class Reconciliation(BaseModel):
    epoch: int
    ok: bool
    differences: list[str] = []
    open_orders: int = 0  # the ledger's open orders, each looked up at the exchange
    unbooked_fills: int = 0  # fills of those orders the ledger books with the next step
    seconds: float = 0.0
    at: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return f"account reconciled at epoch {self.epoch}: {self.open_orders} open orders, all as the ledger says"
        return f"account differs from the ledger at epoch {self.epoch}: " + "; ".join(self.differences)


def write_reconciliation(directory: Path, result: Reconciliation) -> None:
    """The last reconciliation, replaced atomically (a reader never sees half of it)."""
    path = Path(directory) / RECONCILIATION_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(result.model_dump_json())
    os.replace(tmp, path)


def read_reconciliation(directory: Path) -> Reconciliation | None:
    path = Path(directory) / RECONCILIATION_FILE
    try:
        return Reconciliation.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Unbooked:
    """A fill of one of the ledger's open orders that the ledger has not booked yet."""

    symbol: str
    side: int
    qty: float
    cost: float  # quote spent (buy) or received (sell), before the fee
    fee: float


def split(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


def quote_of(symbols: list[str]) -> str:
    """The one quote currency of the book (its cash is one number). ValueError otherwise."""
    quotes = {split(s)[1] for s in symbols}
    if len(quotes) != 1:
        raise ValueError(f"a live book trades symbols of one quote currency, got {sorted(quotes)} for {symbols}")
    return quotes.pop()


def baseline(balances: dict[str, float], cash: float, positions: dict[str, float]) -> dict[str, Any]:
    return {"balances": balances, "cash": cash, "positions": positions}


def expected_balances(
    start: dict[str, Any], cash: float, positions: dict[str, float], symbols: list[str], unbooked: list[Unbooked]
) -> dict[str, float]:
    """What the exchange should hold of each traded asset."""
    quote = quote_of(symbols)
    held, held0 = positions, start["positions"]
    out = {quote: start["balances"].get(quote, 0.0) + cash - start["cash"]}
    for symbol in symbols:
        base = split(symbol)[0]
        out[base] = start["balances"].get(base, 0.0) + held.get(symbol, 0.0) - held0.get(symbol, 0.0)
    for u in unbooked:
        out[split(u.symbol)[0]] += u.side * u.qty
        out[quote] -= u.side * u.cost + u.fee
    return out


def balance_differences(expected: dict[str, float], actual: dict[str, float], tolerance: float) -> list[str]:
    out = []
    for asset, want in sorted(expected.items()):
        have = actual.get(asset, 0.0)
        if abs(have - want) > max(ABS_TOLERANCE, tolerance * max(abs(want), abs(have))):
            out.append(f"{asset} balance is {have:.8g} at the exchange, the ledger accounts for {want:.8g}")
    return out


def order_differences(exchange_open: list[dict[str, Any]], ledger_open: set[str]) -> list[str]:
    """Open orders at the exchange the ledger does not have open (by exchange client id)."""
    return [
        f"open order {o.get('clientOrderId') or o.get('id')} ({o.get('side')} {o.get('amount')} {o.get('symbol')}) "
        "at the exchange is not in the ledger"
        for o in exchange_open
        if o.get("clientOrderId") not in ledger_open
    ]


def fill_differences(trades: list[dict[str, Any]], ours: set[str]) -> list[str]:
    """Fills at the exchange of orders the gateway never sent (by exchange order id)."""
    return [
        f"a fill Sorte did not place: {t.get('side')} {t.get('amount')} {t.get('symbol')} at {t.get('price')} "
        f"(exchange order {t.get('order')})"
        for t in trades
        if str(t.get("order")) not in ours
    ]
