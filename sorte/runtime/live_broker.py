"""Live broker: real orders through ccxt, with the paper broker's bookkeeping.

``CcxtBroker`` is a ``PaperBroker`` whose fills come from the exchange instead of a
simulation: ``submit`` sends the order, ``on_bar`` collects what the exchange filled and
applies it to positions and cash with the paper broker's own code (so PnL, fees and
protective levels are computed one way for backtest, paper and live).

Never twice: every order carries a client order id derived from the decision
(``exchange_client_id``). Before anything is sent the exchange is asked for that id, so an
order re-submitted after a crash, a replayed step or a timeout is recognised instead of
duplicated. A send that times out is left "unconfirmed" and settled on the next bar by a
lookup first; only an answer "no such order" allows sending it again, a bounded number of
times. The retry delay is the batch interval itself: nothing in the order path sleeps.

The calls are synchronous (the runtime's broker interface is), each bounded by the timeout.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import ccxt
import structlog

from sorte.config import Settings
from sorte.runtime.assembly import check_live_credentials
from sorte.runtime.broker import PaperBroker, exit_order, protective_trigger
from sorte.runtime.ccxt_feed import DEFAULT_TIMEOUT_S, ExchangeError, create_exchange, one_line
from sorte.runtime.values import BUY, Bar, Fill, Order, Position

log = structlog.get_logger("sorte.broker")

_CLIENT_ID_OK = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")  # what Binance (and most venues) accept
FINAL = ("closed", "canceled", "expired", "rejected")


def exchange_client_id(client_order_id: str) -> str:
    """The id sent to the exchange: Sorte's own when the exchange accepts it, else a stable
    hash of it, so the same decision always maps to the same exchange order."""
    if _CLIENT_ID_OK.match(client_order_id):
        return client_order_id
    return "sorte-" + hashlib.sha256(client_order_id.encode()).hexdigest()[:30]


def order_fees(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The fee structures ccxt put on an order; empty when it gave none (its trades tell then)."""
    return list(info.get("fees") or ([info["fee"]] if info.get("fee") else []))


def trade_fees(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fee structures of an order's trades (``fetch_my_trades``)."""
    return [t["fee"] for t in trades if t.get("fee")]


def quote_fee(fees: list[dict[str, Any]], symbol: str, price: float) -> float | None:
    """The total of ccxt fee structures in the quote currency; None when unknown (none, or
    one paid in another asset, e.g. a fee token: the configured rate is then kept)."""
    base, _, quote = symbol.partition("/")
    total = 0.0
    for fee in fees:
        cost, currency = float(fee.get("cost") or 0.0), fee.get("currency")
        if currency == quote.split(":")[0]:
            total += cost
        elif currency == base:
            total += cost * price
        else:
            return None
    return total if fees else None


@dataclass
class _Tracked:
    order: Order
    exchange_id: str
    state: str = "unconfirmed"  # unconfirmed (maybe not at the exchange) | sent
    info: dict[str, Any] | None = None  # the exchange's last view of the order (ccxt structure)
    tries: int = 0


class CcxtBroker(PaperBroker):
    def __init__(
        self,
        settings: Settings,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_tries: int = 3,
        rate_limit: bool = True,
    ) -> None:
        check_live_credentials(settings)  # no flag or no keys: nothing below ever runs
        super().__init__(settings.broker)
        ex = settings.exchange
        self.exchange = create_exchange(
            ex, asynchronous=False, timeout_s=timeout_s, credentials=True, rate_limit=rate_limit
        )
        self.where = f"{ex.name} at {ex.base_url}" if ex.base_url else ex.name
        self.max_tries = max(1, max_tries)
        self.tracked: dict[str, _Tracked] = {}
        self.placed: list[Order] = []  # protective exits sent since the runtime last asked

    def take_placed(self) -> list[Order]:
        placed, self.placed = self.placed, []
        return placed

    def verify(self) -> dict[str, float]:
        """An authenticated call, so bad keys fail at start-up; returns the free balances."""
        try:
            balance = self.exchange.fetch_balance()
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{self.where} refused the account check: {one_line(exc)}") from None
        free = balance.get("free") or {}
        return {asset: float(v) for asset, v in free.items() if v}

    # -- orders -------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        known = self.tracked.get(order.client_order_id)
        if known is not None and known.order.status not in ("rejected", "expired"):
            return  # already known to this broker: a retried submit is a no-op
        # New, or given up on before (a protective exit must be tried again): lookup first.
        track = _Tracked(order, exchange_client_id(order.client_order_id))
        self.tracked[order.client_order_id] = track
        self.pending[order.symbol].append(order)
        self._send(track)

    def _send(self, t: _Tracked) -> None:
        """Look the order up by client id; create it only when the exchange does not know it."""
        t.tries += 1
        try:
            info = self._lookup(t)
            if info is None:
                info = self._create(t)
                log.info("order_sent", client_order_id=t.exchange_id, symbol=t.order.symbol, qty=t.order.qty)
        except ccxt.AuthenticationError as exc:
            raise ExchangeError(f"{self.where} rejected the credentials: {one_line(exc)}") from None
        except ccxt.OperationFailed as exc:  # timeout, unreachable, garbled answer: fate unknown
            self._unconfirmed(t, one_line(exc))
            return
        except (TypeError, ValueError, KeyError) as exc:  # an answer ccxt could not parse
            self._unconfirmed(t, f"malformed answer: {one_line(exc)}")
            return
        except ccxt.BaseError as exc:  # invalid order, insufficient funds, unknown symbol
            self._drop(t, "rejected", one_line(exc))
            return
        t.state, t.info = "sent", info

    def _unconfirmed(self, t: _Tracked, reason: str) -> None:
        if t.tries >= self.max_tries:
            self._drop(t, "rejected", f"unconfirmed after {t.tries} tries: {reason}")
        else:
            log.warning("order_unconfirmed", client_order_id=t.exchange_id, tries=t.tries, reason=reason)

    def _lookup(self, t: _Tracked) -> dict[str, Any] | None:
        try:
            return self.exchange.fetch_order(None, t.order.symbol, {"clientOrderId": t.exchange_id})
        except ccxt.OrderNotFound:
            return None

    def _create(self, t: _Tracked) -> dict[str, Any]:
        o = t.order
        price = o.limit_price if o.kind == "limit" else None
        side = "buy" if o.side == BUY else "sell"
        return self.exchange.create_order(o.symbol, o.kind, side, o.qty, price, {"clientOrderId": t.exchange_id})

    def _drop(self, t: _Tracked, status: str, reason: str) -> None:
        t.order.status = status
        queue = self.pending.get(t.order.symbol, [])
        if t.order in queue:
            queue.remove(t.order)
        log.error("order_" + status, client_order_id=t.exchange_id, symbol=t.order.symbol, reason=reason)

    # -- fills --------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> list[Fill]:
        """Collect the exchange's fills of this symbol's orders, then fire protective exits."""
        fills: list[Fill] = []
        if self.pending.get(bar.symbol):
            fills.extend(self._settle(bar))
        pos = self.positions.get(bar.symbol)
        # An order still pending for the symbol may be the close itself: never exit twice.
        if pos is not None and (pos.stop_price or pos.take_price) and not self.pending.get(bar.symbol):
            fills.extend(self._protect(bar, pos))
        self.last_price[bar.symbol] = bar.close
        return fills

    def _settle(self, bar: Bar) -> list[Fill]:
        fills = []
        for order in list(self.pending.get(bar.symbol, [])):
            t = self.tracked[order.client_order_id]
            if t.state == "unconfirmed":
                self._send(t)
            if t.state == "sent" and self._refresh(t):
                fill = self._settle_one(bar, t)
                if fill is not None:
                    fills.append(fill)
        return fills

    def _refresh(self, t: _Tracked) -> bool:
        """Bring ``t.info`` up to date; False when the exchange could not be asked now."""
        if t.info is not None and t.info.get("status") in FINAL:
            return True
        try:
            t.info = self._lookup(t) or t.info
        except ccxt.BaseError as exc:
            log.warning("order_status_unknown", client_order_id=t.exchange_id, reason=one_line(exc))
            return False
        return t.info is not None

    def _settle_one(self, bar: Bar, t: _Tracked) -> Fill | None:
        order = t.order
        status = (t.info or {}).get("status")
        if status == "open" and order.kind == "limit" and order.ttl_bars > 0:
            order.ttl_bars -= 1
            if order.ttl_bars == 0:  # expired: cancel at the exchange, then book what did fill
                status = self._cancel(t)
        if status not in FINAL:
            return None
        self.pending[order.symbol].remove(order)
        if float((t.info or {}).get("filled") or 0.0) <= 0:
            order.status = "expired" if status in ("canceled", "expired") else "rejected"
            log.info("order_" + order.status, client_order_id=t.exchange_id, exchange_status=status)
            return None
        order.status = "filled"
        return self._book(bar, t)

    def _cancel(self, t: _Tracked) -> str | None:
        try:
            self.exchange.cancel_order(None, t.order.symbol, {"clientOrderId": t.exchange_id})
        except ccxt.OrderNotFound:
            pass  # filled or gone meanwhile: the lookup below tells which
        except ccxt.BaseError as exc:
            log.warning("order_cancel_failed", client_order_id=t.exchange_id, reason=one_line(exc))
            t.order.ttl_bars = 1  # try again on the next bar
            return None
        t.info = None
        return t.info.get("status") if self._refresh(t) and t.info else None

    def _book(self, bar: Bar, t: _Tracked) -> Fill:
        """Apply an exchange fill with the paper broker's accounting, at the exchange's price
        and, where the exchange reports it, its fee."""
        info, o = t.info or {}, t.order
        qty = float(info["filled"])
        price = float(info.get("average") or info.get("price") or float(info["cost"]) / qty)
        # Protective exits only close; an order matters to the bookkeeping when it opens.
        opener = o if o.purpose in ("open", "close") else None
        fill = self._apply(o.client_order_id, bar, o.side, qty, price, o.purpose, o.strategy, opener)
        self._charge_fee(fill, self._exchange_fee(t, price))
        log.info("order_filled", client_order_id=t.exchange_id, symbol=bar.symbol, qty=qty, price=price)
        return fill

    def _exchange_fee(self, t: _Tracked, price: float) -> float | None:
        """The fee in quote currency, from the order or its trades; None when unknown."""
        info = t.info or {}
        fees = order_fees(info)
        if not fees:
            try:
                fees = trade_fees(self.exchange.fetch_my_trades(t.order.symbol, params={"orderId": info.get("id")}))
            except ccxt.BaseError as exc:
                log.warning("fee_unknown", client_order_id=t.exchange_id, reason=one_line(exc))
                return None
        return quote_fee(fees, t.order.symbol, price)

    def _protect(self, bar: Bar, pos: Position) -> list[Fill]:
        purpose = protective_trigger(bar, pos)
        if purpose is None:
            return []
        # One exit per position (keyed by its entry), so a restart cannot fire a second one.
        cid = f"{pos.strategy}:{bar.symbol}:{pos.entry_seq}:exit"
        exit_ = exit_order(bar, pos, cid, purpose)
        if cid not in self.tracked:
            self.placed.append(exit_)  # the ledger knows it: a restart settles it, never resends
        self.submit(exit_)
        return self._settle(bar)
