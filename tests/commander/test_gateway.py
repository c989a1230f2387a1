"""The commander's order gateway against the local fake Binance, through the real ccxt client:
orders sent once and only under the holder's epoch, the exchange's reports, and the
reconciliation that refuses to trade on an account that differs from the ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_exchange import API_KEY, API_SECRET, FakeBinance

from commander.alerts import Alerts, read_alerts
from commander.gateway import OrderGateway
from commander.lease import Lease
from commander.order_journal import OrderJournal
from commander.protocol import OrderIntent
from commander.reconcile import Acceptance, BalanceOff, read_acceptance, read_reconciliation, write_acceptance
from sorte import paths
from sorte.config import Settings
from sorte.errors import TradingRefused
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import BUY, SELL, Order

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(SYMBOLS)).start()
    yield exchange
    exchange.stop()


def live_settings(tmp_path: Path, fake: FakeBinance, **runtime: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        runtime={"mode": "live", "live_trading": True, "feed": "ccxt", "symbols": SYMBOLS, **runtime},
        exchange={"base_url": fake.url, "api_key": API_KEY, "api_secret": API_SECRET},
        broker={"initial_cash": 5_000},
        market={"request_timeout_s": 2.0},
        commander={"reconcile_retry_s": 0.05},
    )


class Account:
    """A gateway, the lease it fences with, and the ledger it reconciles, on one data dir."""

    def __init__(self, tmp_path: Path, fake: FakeBinance) -> None:
        self.settings = live_settings(tmp_path, fake)
        self.dir = paths.commander_dir(self.settings.data_dir)
        self.lease = Lease(self.dir)
        self.epoch = self.lease.acquire("blue", None).epoch
        self.ledger = Ledger(paths.commander_ledger(self.dir))
        journal = OrderJournal(paths.account_dir(self.settings.data_dir))
        self.gateway = OrderGateway(self.settings, self.lease, Alerts(self.dir, dedupe_s=0), journal, lambda: SYMBOLS)
        self.step = 0
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def hand(self, slot: str, epoch: int) -> None:
        async def hand_to() -> None:  # inside the loop: the reconciliation is a task of it
            self.gateway.hand_to(slot, epoch, self.ledger)

        self.run(hand_to())

    def commit(self, *orders: Order, cash: float = 5_000.0, positions: dict | None = None) -> None:
        """What the active slot commits before its orders are handed over."""
        account = {"cash": cash, "realized_pnl": 0.0, "fees": 0.0}
        self.ledger.commit_step(self.step, 0.0, list(orders), [], positions or {}, account, cash, {}, [])
        self.step += 1

    def place(self, *orders: Order, slot: str = "blue") -> None:
        intents = [
            OrderIntent(action="place", client_order_id=o.client_order_id, symbol=o.symbol, side=o.side, qty=o.qty)
            for o in orders
        ]
        self.run(self.gateway.place(slot, intents, self.ledger))

    def close(self) -> None:
        self.run(self.gateway.close())
        self.loop.close()
        self.ledger.close()
        self.lease.close()


@pytest.fixture()
def account(tmp_path: Path, fake: FakeBinance) -> Iterator[Account]:
    acc = Account(tmp_path, fake)
    acc.hand("blue", acc.epoch)
    yield acc
    acc.close()


def buy(epoch: int, seq: int = 10, symbol: str = "BTC/USDT", qty: float = 2.0, side: int = BUY) -> Order:
    return Order(f"e{epoch}:{seq}:{symbol}:m:open", symbol, side, qty, "market", "open", "m", seq, 600.0)


def test_the_gateway_needs_the_live_flag_and_keys(tmp_path: Path, fake: FakeBinance) -> None:
    settings = live_settings(tmp_path, fake).model_copy(update={"exchange": Settings().exchange})
    with pytest.raises(TradingRefused, match="no exchange credentials"):
        OrderGateway(settings, Lease(tmp_path), Alerts(tmp_path), OrderJournal(tmp_path / "a"))


def test_an_order_goes_out_once_and_its_fill_comes_back_with_the_exchange_fee(
    account: Account, fake: FakeBinance
) -> None:
    o = buy(account.epoch)
    account.commit(o)
    account.place(o)
    account.place(o)  # the same intent again (a retried step): looked up, not sent twice
    assert [p["newClientOrderId"] for p in fake.posted_orders()] == [o.client_order_id]
    (report,) = account.run(account.gateway.reports(account.ledger))
    price = fake.last_price("BTCUSDT")
    assert (report.status, report.filled) == ("closed", 2.0) and report.average == pytest.approx(price)
    assert report.fee == pytest.approx(2.0 * price * fake.fee_rate)
    assert account.gateway.journal.count() == 1
    asked = [path for _, path, _ in fake.requests]
    assert "/api/v3/myTrades" not in asked  # the fee came with the create answer


def test_orders_of_another_epoch_or_another_slot_are_refused_and_never_sent(
    account: Account, fake: FakeBinance
) -> None:
    stale, foreign = buy(account.epoch - 1 or 99, seq=11), buy(account.epoch, seq=12)
    account.commit(stale, foreign)
    account.place(stale)
    account.place(foreign, slot="green")  # not the holder
    assert fake.posted_orders() == [] and account.gateway.rejected_stale == 2
    reports = {r.client_order_id: r for r in account.run(account.gateway.reports(account.ledger))}
    assert reports[stale.client_order_id].status == "refused" and "stale epoch" in reports[stale.client_order_id].reason
    # the lease moved on: the old holder's orders are refused too
    epoch = account.lease.transfer("blue", "green", account.epoch).epoch
    account.hand("green", epoch)
    late = buy(account.epoch, seq=13)
    account.commit(late)
    account.place(late)
    assert fake.posted_orders() == []


def test_a_send_with_no_answer_is_not_missing_while_the_exchange_may_still_take_it(
    account: Account, fake: FakeBinance
) -> None:
    """The create sits in the exchange's queue past the client's timeout (2 s): the lookup says
    "no such order", yet it lands. Taken for missing, the order would be sent again: twice."""
    o = buy(account.epoch)
    account.commit(o)
    fake.holds["POST /api/v3/order"].append(3.0)
    account.place(o)  # times out: fate unknown
    (report,) = account.run(account.gateway.reports(account.ledger))
    assert report.status == "open" and "the exchange may still take it" in report.reason
    time.sleep(1.5)  # the engine takes it now
    (report,) = account.run(account.gateway.reports(account.ledger))
    assert (report.status, report.filled) == ("closed", 2.0)
    assert [cid for cid in fake.orders] == [o.client_order_id]


def test_a_send_the_exchange_refused_as_late_is_missing_after_the_window(account: Account, fake: FakeBinance) -> None:
    gateway = account.gateway
    assert gateway.exchange.options["recvWindow"] == 10_000  # the default window, 15 s, less 5 s of clock slack
    gateway.answer_window_s, gateway.exchange.options["recvWindow"] = 2.5, 1_000  # a short one, not to wait long
    o = buy(account.epoch)
    account.commit(o)
    fake.holds["POST /api/v3/order"].append(2.2)  # past the client's timeout and the recvWindow
    account.place(o)
    assert account.run(gateway.reports(account.ledger))[0].status == "open"
    time.sleep(0.5)  # the engine refused it (-1021): never an order; the window ends
    assert fake.orders == {}
    assert account.run(gateway.reports(account.ledger))[0].status == "missing"
    account.place(o)  # asked again (same epoch, same id): sent once more, lands once
    assert [cid for cid in fake.orders] == [o.client_order_id]


def test_an_order_the_exchange_never_got_is_reported_missing(account: Account, fake: FakeBinance) -> None:
    o = buy(account.epoch)
    account.commit(o)  # committed; the commander died before sending it
    (report,) = account.run(account.gateway.reports(account.ledger))
    assert report.status == "missing"


def test_a_first_reconciliation_records_the_account_and_the_next_ones_pass(account: Account, fake: FakeBinance) -> None:
    first = account.run(account.gateway.ensure_reconciled(account.ledger))
    assert first.ok and first.epoch == account.epoch, first.differences
    baseline = account.gateway.journal.baseline()
    assert baseline is not None and baseline["balances"]["USDT"] == 10_000.0 and baseline["cash"] == 5_000.0
    o = buy(account.epoch)
    account.commit(o)
    account.place(o)
    # filled at the exchange, not booked yet: explained, not a difference
    epoch = account.lease.transfer("blue", "green", account.epoch).epoch
    account.hand("green", epoch)
    second = account.run(account.gateway.ensure_reconciled(account.ledger))
    assert second.ok and second.unbooked_fills == 1 and second.epoch == epoch, second.differences
    saved = read_reconciliation(paths.account_dir(account.settings.data_dir))
    assert saved is not None and saved.ok and saved.epoch == epoch


def test_a_balance_that_differs_halts_trading_with_an_alert_until_it_matches_again(
    account: Account, fake: FakeBinance
) -> None:
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok
    fake.balances["BTC"] += 0.5  # someone bought behind Sorte's back (or a deposit)
    epoch = account.lease.transfer("blue", "green", account.epoch).epoch
    account.hand("green", epoch)
    result = account.run(account.gateway.ensure_reconciled(account.ledger))
    assert not result.ok
    assert result.differences == ["BTC balance is 0.5 at the exchange, the ledger accounts for 0"]
    (alert,) = [a for a in read_alerts(account.dir) if a["kind"] == "reconcile_mismatch"]
    assert "BTC balance is 0.5" in alert["message"] and "trading refused" in alert["message"]
    o = buy(epoch)
    account.commit(o)
    account.place(o, slot="green")
    assert fake.posted_orders() == []  # not traded
    (report,) = account.run(account.gateway.reports(account.ledger))
    assert report.status == "refused" and "trading halted" in report.reason
    fake.balances["BTC"] -= 0.5
    asyncio_sleep(0.1)
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok  # looked at again: it matches
    assert any(a["kind"] == "reconciled" for a in read_alerts(account.dir))
    again = buy(epoch, seq=11)
    account.commit(again)
    account.place(again, slot="green")
    assert [p["newClientOrderId"] for p in fake.posted_orders()] == [again.client_order_id]


def refused_after_a_deposit(account: Account, fake: FakeBinance) -> tuple[int, Any]:
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok
    fake.balances["USDT"] += 1_000.0  # the trader funds the account
    epoch = account.lease.transfer("blue", "green", account.epoch).epoch
    account.hand("green", epoch)
    return epoch, account.run(account.gateway.ensure_reconciled(account.ledger))


def test_a_deposit_the_operator_accepts_moves_the_baseline_and_trading_resumes_at_once(
    account: Account, fake: FakeBinance
) -> None:
    epoch, refused = refused_after_a_deposit(account, fake)
    assert refused.balances == [BalanceOff(asset="USDT", exchange=11_000.0, ledger=10_000.0)]
    folder = paths.account_dir(account.settings.data_dir)
    write_acceptance(folder, Acceptance(balances={"USDT": 11_000.0}, by="local", at=refused.at))
    # looked at again now, not after reconcile_retry_s: the operator is waiting
    account.gateway.retry_s = 3600.0
    result = account.run(account.gateway.ensure_reconciled(account.ledger))
    assert result.ok and result.epoch == epoch, result.differences
    assert account.gateway.journal.baseline()["balances"]["USDT"] == 11_000.0
    assert read_acceptance(folder) is None  # used once
    (alert,) = [a for a in read_alerts(account.dir) if a["kind"] == "balances_accepted"]
    assert alert["message"] == "balances accepted by local: USDT 11000 (the ledger accounted for 10000)"
    o = buy(epoch)
    account.commit(o)
    account.place(o, slot="green")
    assert [p["newClientOrderId"] for p in fake.posted_orders()] == [o.client_order_id]
    fake.balances["USDT"] += 100.0  # the accepted deposit is not a licence for the next change
    assert not account.run(account.gateway.reconcile(epoch, account.ledger)).ok


def test_an_acceptance_of_a_balance_that_moved_since_is_not_applied(account: Account, fake: FakeBinance) -> None:
    epoch, refused = refused_after_a_deposit(account, fake)
    folder = paths.account_dir(account.settings.data_dir)
    write_acceptance(folder, Acceptance(balances={"USDT": 11_000.0}, by="local", at=refused.at))
    fake.balances["USDT"] += 500.0  # moved again after the operator looked
    result = account.run(account.gateway.reconcile(epoch, account.ledger))
    assert not result.ok
    assert result.balances == [BalanceOff(asset="USDT", exchange=11_500.0, ledger=10_000.0)]
    assert account.gateway.journal.baseline()["balances"]["USDT"] == 10_000.0
    (alert,) = [a for a in read_alerts(account.dir) if a["kind"] == "acceptance_refused"]
    assert alert["message"] == (
        "not accepted (look again, accept anew): USDT balance is 11500 at the exchange, the ledger accounts "
        "for 10000, 11000 was accepted: it moved since"
    )
    assert read_acceptance(folder) is None  # dropped: the operator looks again


def test_a_withdrawal_below_what_the_book_holds_cannot_be_accepted(account: Account, fake: FakeBinance) -> None:
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok
    fake.balances["USDT"] = 4_000.0  # withdrawn: less than the book's 5,000 cash
    epoch = account.lease.transfer("blue", "green", account.epoch).epoch
    account.hand("green", epoch)
    refused = account.run(account.gateway.ensure_reconciled(account.ledger))
    folder = paths.account_dir(account.settings.data_dir)
    write_acceptance(folder, Acceptance(balances={"USDT": 4_000.0}, by="local", at=refused.at))
    result = account.run(account.gateway.reconcile(epoch, account.ledger))
    assert not result.ok and [b.asset for b in result.balances] == ["USDT"]
    (alert,) = [a for a in read_alerts(account.dir) if a["kind"] == "acceptance_refused"]
    assert "USDT 4000 at the exchange is less than the book's 5000 (fund the account" in alert["message"]
    fake.balances["USDT"] = 9_000.0  # a smaller withdrawal the book can live with
    write_acceptance(folder, Acceptance(balances={"USDT": 9_000.0}, by="local", at=result.at))
    assert account.run(account.gateway.reconcile(epoch, account.ledger)).ok


def test_a_foreign_open_order_and_a_foreign_fill_are_named(account: Account, fake: FakeBinance) -> None:
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok
    fake.plant_order("ETH/USDT", "BUY", 1.0, 50.0, "manual-1")
    fake.place({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.1", "newClientOrderId": "bot-7"})
    result = account.run(account.gateway.reconcile(account.epoch, account.ledger))
    text = "\n".join(result.differences)
    assert "open order manual-1 (buy 1.0 ETH/USDT) at the exchange is not in the ledger" in text
    assert "a fill Sorte did not place: sell 0.1 BTC/USDT" in text
    assert "BTC balance is -0.1 at the exchange" in text


def test_an_account_with_less_than_the_books_cash_is_refused(account: Account, fake: FakeBinance) -> None:
    fake.balances["USDT"] = 1_000.0
    result = account.run(account.gateway.ensure_reconciled(account.ledger))
    assert not result.ok
    assert result.differences == [
        "the account holds 1000 USDT, less than the book's cash 5000 (broker.initial_cash): "
        "lower it, or fund the account"
    ]
    assert account.gateway.journal.baseline() is None  # nothing recorded from a refused start


def test_positions_and_cash_the_ledger_booked_reconcile_against_the_baseline(
    account: Account, fake: FakeBinance
) -> None:
    assert account.run(account.gateway.ensure_reconciled(account.ledger)).ok
    o, sell = buy(account.epoch, qty=2.0), buy(account.epoch, seq=11, qty=0.5, side=SELL)
    account.commit(o)
    account.place(o)
    account.commit(sell)
    account.place(sell)
    (r1, r2) = account.run(account.gateway.reports(account.ledger))
    cash = 5_000.0 - r1.filled * r1.average - r1.fee + r2.filled * r2.average - r2.fee
    o.status = sell.status = "filled"  # the slot booked both fills
    from sorte.runtime.values import Position

    held = {"BTC/USDT": Position("BTC/USDT", 1.5, r1.average, 10, 600.0, "m")}
    account.ledger.commit_step(account.step, 0.0, [], [], held, {"cash": cash}, cash, {}, [o, sell])
    result = account.run(account.gateway.reconcile(account.epoch, account.ledger))
    assert result.ok and result.unbooked_fills == 0, result.differences


def asyncio_sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def test_an_exchange_that_does_not_answer_leaves_every_order_as_it_was(account: Account, fake: FakeBinance) -> None:
    sent, unsure = buy(account.epoch), buy(account.epoch, seq=11)
    account.commit(sent)
    account.place(sent)
    account.commit(unsure)
    fake.set_down(True)
    account.place(unsure)  # its fate unknown: nothing raised, nothing booked
    reports = account.run(account.gateway.reports(account.ledger))
    # the filled one is known from its create answer (fills and fee in it); the other stays open
    assert [(r.status, r.reason) for r in reports] == [("closed", ""), ("open", "exchange not answering")]
    fake.set_down(False)
    after = {r.client_order_id: r.status for r in account.run(account.gateway.reports(account.ledger))}
    assert after == {sent.client_order_id: "closed", unsure.client_order_id: "missing"}  # the slot asks again


def test_an_order_the_ledger_does_not_hold_as_sent_is_never_sent(account: Account, fake: FakeBinance) -> None:
    """The ledger is the evidence: an intent the active slot did not commit, or changed since,
    is refused (a slot runs code the agent wrote)."""
    unrecorded = buy(account.epoch)
    account.place(unrecorded)
    committed = buy(account.epoch, seq=11, qty=2.0)
    account.commit(committed)
    account.place(buy(account.epoch, seq=11, qty=200.0))  # the same id, a larger order
    assert fake.posted_orders() == []
    assert account.gateway.rejected_stale == 0  # not an epoch matter: refused for what it is
    (report,) = account.run(account.gateway.reports(account.ledger))
    assert report.status == "refused" and "not as the ledger holds it" in report.reason
    alerts = [a for a in read_alerts(account.dir) if a["kind"] == "order_not_in_ledger"]
    assert len(alerts) == 2, alerts


def test_a_reconciliation_cut_short_by_a_stop_raises_no_alert(tmp_path: Path, fake: FakeBinance) -> None:
    acc = Account(tmp_path, fake)
    fake.latency_s = 0.5  # the reading is still on its way when the commander stops

    async def hand_and_stop() -> None:
        acc.gateway.hand_to("blue", acc.epoch, acc.ledger)
        await asyncio.sleep(0.1)
        await acc.gateway.close()

    acc.run(hand_and_stop())
    assert not [a for a in read_alerts(acc.dir) if a["kind"] == "reconcile_mismatch"]
    assert read_reconciliation(paths.account_dir(acc.settings.data_dir)) is None
    acc.loop.close()
    acc.ledger.close()
    acc.lease.close()
