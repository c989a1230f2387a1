"""The commander's order gateway on a live account: the one place where orders reach the
exchange (a slot holds no keys; its orders come back in ``Done.orders``).

- Fencing: an order is sent only for the slot the commander handed the lease to
  (``hand_to``), stamped with that epoch (``e<epoch>:`` in its client order id), and only
  while the lease store agrees; anything else is refused and counted. The holder is kept in
  this process's memory: the lease file lies in a folder slots may write, so it alone is no
  proof. The lease changes only here, between steps, so the check cannot go stale while an
  order is on its way.
- The ledger is the evidence: only an open order the active slot committed, as committed, is
  sent (a slot runs code the agent wrote; what it hands over is checked, not trusted).
- Never twice: every order is written to the journal before it is sent, and looked up at the
  exchange by its client order id first; only "no such order" lets it be created. A send with
  no answer (a timeout, a commander killed mid-request) may still reach the matching engine
  for a while: "no such order" counts as "never got" only ``order_answer_window_s`` after the
  latest send, and the exchange's own ``recvWindow`` is set shorter, so it refuses the late
  request itself.
- Reports: before each step, the exchange's view of the ledger's open orders (one listing of
  open orders, a lookup of each one that left it), for the active slot to book.
- Reconciliation (``commander.reconcile``) on every change of lease holder, before the first
  order of the new epoch; on a difference the gateway sends nothing, the commander stops new
  entries, an alert says what differs, and it looks again every ``reconcile_retry_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ccxt.async_support as ccxt
import structlog

from commander.alerts import Alerts
from commander.lease import Lease
from commander.order_journal import OrderJournal
from commander.protocol import OrderIntent, OrderReport
from commander.reconcile import (
    BalanceOff,
    Reconciliation,
    Unbooked,
    accept_balances,
    balance_differences,
    baseline,
    drop_acceptance,
    expected_balances,
    fill_differences,
    order_differences,
    quote_of,
    read_acceptance,
    split,
    write_reconciliation,
)
from sorte.config import Settings
from sorte.runtime.assembly import check_live_credentials
from sorte.runtime.ccxt_feed import ExchangeError, create_exchange, one_line
from sorte.runtime.ledger import Ledger
from sorte.runtime.live_broker import exchange_client_id, order_fees, quote_fee, trade_fees
from sorte.runtime.values import Order

log = structlog.get_logger("sorte.gateway")

FINAL = ("closed", "canceled", "expired", "rejected")
ALL_SYMBOLS_AT = 13  # open orders of more symbols than this: one call without a symbol
CLOCK_SLACK_S = 5.0  # our clock against the exchange's, in the answer window


def as_committed(it: OrderIntent, order: Order | None) -> bool:
    """The intent is the ledger's open order, unchanged (a slot runs code the agent wrote)."""
    if order is None or order.symbol != it.symbol:
        return False
    if it.action == "cancel":
        return True
    limit = order.limit_price if order.kind == "limit" else None
    return (order.side, order.qty, order.kind, limit) == (it.side, it.qty, it.kind, it.limit_price)


class OrderGateway:
    def __init__(
        self,
        settings: Settings,
        lease: Lease,
        alerts: Alerts,
        journal: OrderJournal,
        symbols: Callable[[], list[str]] = list,
    ) -> None:
        check_live_credentials(settings)  # no flag or no keys: nothing here is ever built
        ex = settings.exchange
        self.exchange = create_exchange(
            ex, asynchronous=True, timeout_s=settings.market.request_timeout_s, credentials=True
        )
        self.exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False  # one call for all symbols
        # The exchange's own rule is a budget per minute (Binance: 6,000 weight), not an even
        # pace: a reconciliation's burst of calls fits in it instead of queueing for seconds.
        self.exchange.rateLimiterAlgorithm, self.exchange.rollingWindowSize = "rollingWindow", 60_000.0
        self.exchange.tokenBucket = None
        self.exchange.init_rest_rate_limiter()
        self.answer_window_s = settings.commander.order_answer_window_s
        if "recvWindow" in self.exchange.options:  # a late request is refused by the exchange itself
            self.exchange.options["recvWindow"] = int((self.answer_window_s - CLOCK_SLACK_S) * 1000)
        self.where = f"{ex.name} at {ex.base_url}" if ex.base_url else ex.name
        self.lease, self.alerts, self.journal = lease, alerts, journal
        self.tolerance = settings.commander.reconcile_tolerance
        self.retry_s = settings.commander.reconcile_retry_s
        self.initial_cash = settings.broker.initial_cash
        self.holder: tuple[str, int] | None = None  # (slot, epoch) the commander handed the lease to
        self.symbols = symbols  # what the feed trades now: the reconciled assets
        self._reconciling: tuple[int, asyncio.Task[Reconciliation]] | None = None
        self.reconciled: Reconciliation | None = None
        self.halted = ""  # why nothing is sent: the last reconciliation's differences
        self.refused: dict[str, OrderReport] = {}  # until the slot books the refusal
        self.final: dict[str, OrderReport] = {}  # a final state does not change: asked once
        self.rejected_stale = 0
        self.sent = 0
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        if self._reconciling is not None and not self._reconciling[1].done():
            # stopping, not a mismatch: no alert, no result written from a closed client
            self._reconciling[1].cancel()
            await asyncio.gather(self._reconciling[1], return_exceptions=True)
        await self.exchange.close()
        self.journal.close()

    async def verify(self) -> None:
        """An authenticated call at start: bad keys or an unreachable exchange fail here."""
        try:
            await self.exchange.fetch_balance()
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{self.where} refused the account check: {one_line(exc)}") from None

    # -- the lease -----------------------------------------------------------------------------
    def hand_to(self, slot: str, epoch: int, ledger: Ledger) -> None:
        """The lease went to ``slot`` at ``epoch``: reconcile (in the background) before its
        first order; ``place`` waits for it."""
        self.holder = (slot, epoch)
        self._reconcile_for(epoch, ledger)

    def _reconcile_for(self, epoch: int, ledger: Ledger) -> asyncio.Task[Reconciliation]:
        """The reconciliation of ``epoch``: the one running or done, else a new one."""
        if self._reconciling is None or self._reconciling[0] != epoch:
            self._reconciling = (epoch, asyncio.ensure_future(self.reconcile(epoch, ledger)))
        return self._reconciling[1]

    async def ensure_reconciled(self, ledger: Ledger) -> Reconciliation | None:
        """The holder's reconciliation, done (and done again every ``retry_s`` while it differs,
        or at once when the operator accepted balances since)."""
        if self.holder is None:
            return None
        epoch = self.holder[1]
        last = self.reconciled
        if last is not None and last.epoch == epoch and not last.ok:
            accepted = read_acceptance(self.journal.path.parent)
            if time.time() - last.at >= self.retry_s or (accepted is not None and accepted.at >= last.at):
                self._reconciling = None
        return await self._reconcile_for(epoch, ledger)

    # -- orders ------------------------------------------------------------------------------
    async def place(self, slot: str, intents: list[OrderIntent], ledger: Ledger) -> None:
        """Send what the active slot committed, if the commander handed it the lease."""
        if not intents:
            return
        epoch = self.holder[1] if self.holder is not None and self.holder[0] == slot else 0
        state = self.lease.current()
        holder = epoch > 0 and state.holder == slot and state.epoch == epoch
        if holder:
            await self.ensure_reconciled(ledger)
        committed = {o.client_order_id: o for o in ledger.open_orders()}
        for it in intents:
            cid = it.client_order_id
            if not (holder and cid.startswith(f"e{epoch}:")):
                self.rejected_stale += 1
                self._refuse(cid, f"stale epoch: {state.describe()}; the order {cid} came from {slot}")
            elif not as_committed(it, committed.get(cid)):
                self._refuse(cid, "not as the ledger holds it: only a committed open order is sent")
                self.alerts.emit("order_not_in_ledger", f"order {cid} from {slot} refused: not as the ledger holds it")
            elif self.halted:
                self._refuse(cid, f"trading halted: {self.halted}")
            elif it.action == "cancel":
                await self._cancel(it)
            else:
                await self._send(it, epoch, slot)

    def _refuse(self, cid: str, reason: str) -> None:
        log.error("order_refused", client_order_id=cid, reason=reason)
        self.refused[cid] = OrderReport(client_order_id=cid, status="refused", reason=reason)

    async def _send(self, it: OrderIntent, epoch: int, slot: str) -> None:
        ecid = exchange_client_id(it.client_order_id)
        self.journal.sending(it.client_order_id, ecid, it.symbol, epoch, slot)
        try:
            info = await self._lookup(it.symbol, ecid)
            if info is None:
                side = "buy" if it.side > 0 else "sell"
                params = {"clientOrderId": ecid}
                self.journal.creating(it.client_order_id)
                info = await self.exchange.create_order(it.symbol, it.kind, side, it.qty, it.limit_price, params)
                self.sent += 1
                log.info("order_sent", client_order_id=ecid, symbol=it.symbol, qty=it.qty, epoch=epoch)
                if info.get("status") in FINAL and (info.get("fees") or info.get("fee")):
                    # A market order's answer carries its fills and fees: no lookup needed later.
                    self.final[it.client_order_id] = await self._as_report(it.client_order_id, it.symbol, info)
        except (ccxt.OperationFailed, TypeError, ValueError, KeyError) as exc:
            # Fate unknown (timeout, garbled answer): the next report looks it up by its id.
            log.warning("order_unconfirmed", client_order_id=ecid, reason=one_line(exc))
            return
        except ccxt.BaseError as exc:  # invalid order, insufficient funds, unknown symbol
            self.refused[it.client_order_id] = OrderReport(
                client_order_id=it.client_order_id, status="rejected", reason=one_line(exc)
            )
            log.error("order_rejected", client_order_id=ecid, reason=one_line(exc))
            return
        self.journal.sent(it.client_order_id, str(info.get("id")))

    async def _cancel(self, it: OrderIntent) -> None:
        try:
            await self.exchange.cancel_order(None, it.symbol, {"clientOrderId": exchange_client_id(it.client_order_id)})
        except ccxt.OrderNotFound:
            pass  # filled or gone meanwhile: the next report says which
        except ccxt.BaseError as exc:
            log.warning("order_cancel_failed", client_order_id=it.client_order_id, reason=one_line(exc))

    async def _lookup(self, symbol: str, ecid: str) -> dict[str, Any] | None:
        try:
            return await self.exchange.fetch_order(None, symbol, {"clientOrderId": ecid})
        except ccxt.OrderNotFound:
            return None

    # -- reports -----------------------------------------------------------------------------
    async def reports(self, ledger: Ledger) -> list[OrderReport]:
        """The exchange's view of every open order of the ledger (the active book's)."""
        open_orders = ledger.open_orders()
        ids = {o.client_order_id for o in open_orders}
        self.refused = {k: v for k, v in self.refused.items() if k in ids}  # booked by the slot: done
        self.final = {k: v for k, v in self.final.items() if k in ids}
        if not open_orders:
            return []
        asked = sorted({o.symbol for o in open_orders if self._unsettled(o)})
        try:
            live = await self._open_at_exchange(asked) if asked else {}
        except ccxt.BaseError as exc:  # no answer now: every order stays as it was, asked again next step
            log.warning("orders_status_unknown", reason=one_line(exc))
            unknown = OrderReport(client_order_id="", status="open", reason="exchange not answering")
            return [
                self.refused.get(o.client_order_id)
                or self.final.get(o.client_order_id)
                or unknown.model_copy(update={"client_order_id": o.client_order_id})
                for o in open_orders
            ]
        return list(await asyncio.gather(*(self._report(o, live) for o in open_orders)))

    def _unsettled(self, order: Order) -> bool:
        return order.client_order_id not in self.refused and order.client_order_id not in self.final

    async def _open_at_exchange(self, symbols: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Open orders by exchange client id: of a few symbols one call each, else one call for
        all (Binance weighs a call without a symbol like 13 with one)."""
        if symbols is None or len(symbols) > ALL_SYMBOLS_AT:
            found = await self.exchange.fetch_open_orders()
        else:
            found = [o for got in await asyncio.gather(*map(self.exchange.fetch_open_orders, symbols)) for o in got]
        return {o.get("clientOrderId"): o for o in found}

    async def _report(self, order: Order, live: dict[str, dict[str, Any]]) -> OrderReport:
        cid = order.client_order_id
        known = self.refused.get(cid) or self.final.get(cid)
        if known is not None:
            return known
        ecid = exchange_client_id(cid)
        info = live.get(ecid)
        if info is None:
            try:
                info = await self._lookup(order.symbol, ecid)
            except ccxt.BaseError as exc:
                log.warning("order_status_unknown", client_order_id=ecid, reason=one_line(exc))
                return OrderReport(client_order_id=cid, status="open", reason="exchange not answering")
        if info is None:
            return self._not_found(cid)
        self.journal.sent(cid, str(info.get("id")))  # a send whose answer was lost: now known
        report = await self._as_report(cid, order.symbol, info)
        if report.final:
            self.final[cid] = report
        return report

    def _not_found(self, cid: str) -> OrderReport:
        """ "No such order" means never got only once a send in flight can no longer arrive."""
        at = self.journal.last_sent_at(cid)
        age = time.time() - at if at is not None else None
        if age is not None and age < self.answer_window_s:
            reason = f"sent {age:.1f} s ago with no answer: the exchange may still take it"
            return OrderReport(client_order_id=cid, status="open", reason=reason)
        return OrderReport(client_order_id=cid, status="missing")

    async def _as_report(self, cid: str, symbol: str, info: dict[str, Any]) -> OrderReport:
        filled = float(info.get("filled") or 0.0)
        average = info.get("average") or info.get("price")
        if filled > 0 and not average and info.get("cost"):
            average = float(info["cost"]) / filled
        status = str(info.get("status") or "open")
        fee = None
        if filled > 0 and status in FINAL and average:
            fee = quote_fee(await self._fees(symbol, info), symbol, float(average))
        return OrderReport(
            client_order_id=cid,
            status=status,
            filled=filled,
            average=float(average) if average else None,
            fee=fee,
        )

    async def _fees(self, symbol: str, info: dict[str, Any]) -> list[dict[str, Any]]:
        fees = order_fees(info)
        if fees:
            return fees
        try:
            return trade_fees(await self.exchange.fetch_my_trades(symbol, params={"orderId": info.get("id")}))
        except ccxt.BaseError as exc:
            log.warning("fee_unknown", order=info.get("id"), reason=one_line(exc))
            return []

    # -- reconciliation ----------------------------------------------------------------------
    async def reconcile(self, epoch: int, ledger: Ledger) -> Reconciliation:
        """Compare the account at the exchange with the ledger; conclude (halt, alert)."""
        t0 = time.monotonic()
        # One reading of the book: the new holder may commit steps while this one runs.
        held, open_orders, account = ledger.book_state()
        positions = {s: p.qty for s, p in held.items()}
        cash = account.get("cash", self.initial_cash)
        universe = sorted({*self.symbols(), *positions, *(o.symbol for o in open_orders)})
        try:
            result = await self._compare(epoch, ledger, positions, open_orders, universe, cash)
        except ccxt.BaseError as exc:
            result = Reconciliation(
                epoch=epoch, ok=False, differences=[f"the exchange did not answer: {one_line(exc)}"]
            )
        except ValueError as exc:
            result = Reconciliation(epoch=epoch, ok=False, differences=[str(exc)])
        result.seconds, result.at = time.monotonic() - t0, time.time()
        if not self.closed:  # a reading cut short by a stop is no finding
            self._conclude(result)
        return result

    async def _compare(
        self,
        epoch: int,
        ledger: Ledger,
        positions: dict[str, float],
        open_orders: list[Order],
        universe: list[str],
        cash: float,
    ) -> Reconciliation:
        self.final.clear()  # read everything afresh
        now_ms = int(await self.exchange.fetch_time())  # the exchange's clock: its fills' times
        live = await self._open_at_exchange()
        reports = await asyncio.gather(*(self._report(o, live) for o in open_orders))
        balance = await self.exchange.fetch_balance()
        totals = {a: float(v) for a, v in (balance.get("total") or {}).items() if v is not None}
        start = self.journal.baseline()
        differences = order_differences(
            list(live.values()), {exchange_client_id(o.client_order_id) for o in open_orders}
        )
        unbooked = [
            Unbooked(o.symbol, o.side, r.filled, r.filled * (r.average or 0.0), r.fee or 0.0)
            for o, r in zip(open_orders, reports, strict=True)
            if r.filled > 0
        ]
        off: list[BalanceOff] = []
        if start is None and universe:
            differences += self._first_baseline(totals, cash, positions, open_orders, universe, ledger, now_ms)
        elif start is not None and universe:
            start = self._extend_baseline(start, totals, positions, open_orders, universe)
            expected = expected_balances(start, cash, positions, universe, unbooked)
            book = {quote_of(universe): cash} | {split(s)[0]: q for s, q in positions.items() if q > 0}
            off = self._accepted(start, balance_differences(expected, totals, self.tolerance), book)
            differences += await self._foreign_fills(off, universe) + [b.describe() for b in off]
        if not differences and start is not None:
            self.journal.set_trades_since_ms(now_ms)
        return Reconciliation(
            epoch=epoch,
            ok=not differences,
            differences=differences,
            balances=off,
            open_orders=len(open_orders),
            unbooked_fills=len(unbooked),
        )

    def _accepted(self, start: dict[str, Any], off: list[BalanceOff], book: dict[str, float]) -> list[BalanceOff]:
        """Apply the operator's acceptance of balances, if one waits (once: it is dropped)."""
        folder = self.journal.path.parent
        request = read_acceptance(folder)
        if request is None:
            return off
        left, done, refused = accept_balances(start, off, request.balances, self.tolerance, book)
        if done:
            self.journal.set_baseline(start)
            self.alerts.emit("balances_accepted", f"balances accepted by {request.by}: " + "; ".join(done))
        if refused:
            self.alerts.emit("acceptance_refused", "not accepted (look again, accept anew): " + "; ".join(refused))
        drop_acceptance(folder)
        log.info("acceptance_applied", by=request.by, accepted=done, refused=refused)
        return left

    async def _foreign_fills(self, off: list[BalanceOff], universe: list[str]) -> list[str]:
        """The exchange's fills since the last reconciliation that explain a balance that is off:
        of the symbols of that asset (all of them when the quote currency is off). Fills of
        the ledger's own orders are accounted for above, so a book that matches needs none."""
        if not off:
            return []
        assets = {b.asset for b in off}
        quote = quote_of(universe)
        symbols = universe if quote in assets else [s for s in universe if split(s)[0] in assets]
        since = self.journal.trades_since_ms()
        trades = [
            t for got in await asyncio.gather(*(self.exchange.fetch_my_trades(s, since) for s in symbols)) for t in got
        ]
        return fill_differences(trades, self.journal.exchange_order_ids())

    def _first_baseline(
        self,
        totals: dict[str, float],
        cash: float,
        positions: dict[str, float],
        open_orders: list[Order],
        universe: list[str],
        ledger: Ledger,
        now_ms: int,
    ) -> list[str]:
        """The book starts on this account now: its balances are the baseline (once)."""
        if positions or open_orders or ledger.fills():
            return ["the ledger has traded but the gateway has no record of the account before it (orders.sqlite)"]
        quote = quote_of(universe)
        if totals.get(quote, 0.0) < cash:
            return [
                f"the account holds {totals.get(quote, 0.0):.8g} {quote}, less than the book's cash {cash:.8g} "
                "(broker.initial_cash): lower it, or fund the account"
            ]
        assets = {quote, *(split(s)[0] for s in universe)}
        self.journal.set_baseline(baseline({a: totals.get(a, 0.0) for a in sorted(assets)}, cash, {}))
        self.journal.set_trades_since_ms(now_ms)
        log.info("account_baseline", balances={a: totals.get(a, 0.0) for a in sorted(assets)}, cash=cash)
        return []

    def _extend_baseline(
        self,
        start: dict[str, Any],
        totals: dict[str, float],
        positions: dict[str, float],
        open_orders: list[Order],
        universe: list[str],
    ) -> dict[str, Any]:
        """A symbol added since (pair selection) starts from what the account holds of it now,
        if the book never touched it."""
        touched = set(positions) | {o.symbol for o in open_orders}
        new = [s for s in universe if split(s)[0] not in start["balances"] and s not in touched]
        if new:
            start["balances"].update({split(s)[0]: totals.get(split(s)[0], 0.0) for s in new})
            self.journal.set_baseline(start)
        return start

    def _conclude(self, result: Reconciliation) -> None:
        was = self.halted
        self.reconciled = result
        try:  # for the front-ends; ``account_dir`` is not writable by slots
            write_reconciliation(self.journal.path.parent, result)
        except OSError as exc:
            log.warning("reconciliation_not_written", reason=str(exc))
        self.halted = "" if result.ok else "; ".join(result.differences)
        log.info(
            "reconciled", ok=result.ok, epoch=result.epoch, seconds=round(result.seconds, 3), open=result.open_orders
        )
        if not result.ok and self.halted != was:
            self.alerts.emit("reconcile_mismatch", f"trading refused: {result.describe()}", epoch=result.epoch)
        elif result.ok and was:
            self.alerts.emit("reconciled", f"trading resumes: {result.describe()}", epoch=result.epoch)
