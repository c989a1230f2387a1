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

A balance changed on purpose (a deposit, a withdrawal, a trade by hand) is accepted by the
operator (``sorte reconcile --accept``): the request names the exchange balances they saw, and
the next reconciliation moves the baseline by the difference only if the exchange still holds
exactly those amounts. It lives in the account folder, which slots cannot write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

ABS_TOLERANCE = 1e-8  # an exchange's smallest step of most assets
RECONCILIATION_FILE = "reconciliation.json"
ACCEPT_FILE = "accept.json"
M = TypeVar("M", bound=BaseModel)


class BalanceOff(BaseModel):
    """One asset the exchange holds a different amount of than the ledger accounts for."""

    asset: str
    exchange: float
    ledger: float

    def describe(self) -> str:
        return f"{self.asset} balance is {self.exchange:.8g} at the exchange, the ledger accounts for {self.ledger:.8g}"


class Reconciliation(BaseModel):
    epoch: int
    ok: bool
    differences: list[str] = []
    balances: list[BalanceOff] = []  # the balance differences among ``differences``, as numbers
    open_orders: int = 0  # the ledger's open orders, each looked up at the exchange
    unbooked_fills: int = 0  # fills of those orders the ledger books with the next step
    seconds: float = 0.0
    at: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return f"account reconciled at epoch {self.epoch}: {self.open_orders} open orders, all as the ledger says"
        return f"account differs from the ledger at epoch {self.epoch}: " + "; ".join(self.differences)


def _write(path: Path, model: BaseModel) -> None:
    """Replaced atomically: a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(model.model_dump_json())
    os.replace(tmp, path)


def _read(path: Path, kind: type[M]) -> M | None:
    try:
        return kind.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def write_reconciliation(directory: Path, result: Reconciliation) -> None:
    _write(Path(directory) / RECONCILIATION_FILE, result)


def read_reconciliation(directory: Path) -> Reconciliation | None:
    return _read(Path(directory) / RECONCILIATION_FILE, Reconciliation)


class Acceptance(BaseModel):
    """The operator's word that these exchange balances are right (a deposit, a withdrawal)."""

    balances: dict[str, float]  # asset -> the amount at the exchange the operator saw and accepted
    by: str
    at: float


def write_acceptance(directory: Path, acceptance: Acceptance) -> None:
    _write(Path(directory) / ACCEPT_FILE, acceptance)


def read_acceptance(directory: Path) -> Acceptance | None:
    return _read(Path(directory) / ACCEPT_FILE, Acceptance)


def drop_acceptance(directory: Path) -> None:
    (Path(directory) / ACCEPT_FILE).unlink(missing_ok=True)


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


def same_amount(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= max(ABS_TOLERANCE, tolerance * max(abs(a), abs(b)))


def balance_differences(expected: dict[str, float], actual: dict[str, float], tolerance: float) -> list[BalanceOff]:
    return [
        BalanceOff(asset=asset, exchange=actual.get(asset, 0.0), ledger=want)
        for asset, want in sorted(expected.items())
        if not same_amount(actual.get(asset, 0.0), want, tolerance)
    ]


def accept_balances(
    start: dict[str, Any],
    off: list[BalanceOff],
    accepted: dict[str, float],
    tolerance: float,
    book: dict[str, float],
) -> tuple[list[BalanceOff], list[str], list[str]]:
    """Move the baseline of each accepted asset by what differs, if the exchange still holds
    the amount the operator accepted and at least what the book holds of it (``book``: its
    cash in the quote currency, its positions in each base asset). Returns the differences
    left, what was accepted and what was not, in words; ``start`` is changed in place."""
    left, done, refused = [], [], []
    for b in off:
        if b.asset not in accepted:
            left.append(b)
        elif not same_amount(b.exchange, accepted[b.asset], tolerance):
            left.append(b)
            refused.append(f"{b.describe()}, {accepted[b.asset]:.8g} was accepted: it moved since")
        elif b.exchange < book.get(b.asset, 0.0) - ABS_TOLERANCE:
            left.append(b)
            refused.append(
                f"{b.asset} {b.exchange:.8g} at the exchange is less than the book's {book[b.asset]:.8g} "
                "(fund the account, or lower broker.initial_cash)"
            )
        else:
            start["balances"][b.asset] = start["balances"].get(b.asset, 0.0) + b.exchange - b.ledger
            done.append(f"{b.asset} {b.exchange:.8g} (the ledger accounted for {b.ledger:.8g})")
    return left, done, refused


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
