"""The live broker, through the real ccxt client against a local fake Binance."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fake_exchange import API_KEY, API_SECRET, FakeBinance
from pydantic import SecretStr
from structlog.testing import capture_logs

from sorte.config import BrokerSettings, ExchangeSettings, RiskSettings, RuntimeSettings, Settings
from sorte.errors import TradingRefused
from sorte.runtime.ccxt_feed import CcxtPollingFeed, ExchangeError
from sorte.runtime.executor import Executor
from sorte.runtime.ledger import Ledger
from sorte.runtime.live import build_live_session
from sorte.runtime.live_broker import CcxtBroker, exchange_client_id
from sorte.runtime.values import BUY, SELL, Bar, Decision, Order

SYMBOL = "BTC/USDT"


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance((SYMBOL, "ETH/USDT")).start()
    yield exchange
    exchange.stop()


def live_settings(
    settings: Settings, fake: FakeBinance, flag: bool = True, key: str = API_KEY, secret: str = API_SECRET
) -> Settings:
    exchange = ExchangeSettings(base_url=fake.url, api_key=SecretStr(key), api_secret=SecretStr(secret))
    return settings.model_copy(
        update={
            "exchange": exchange,
            "runtime": RuntimeSettings(mode="paper", live_trading=flag, feed="ccxt", symbols=[SYMBOL]),
            "broker": BrokerSettings(initial_cash=10_000, fee_bps=10, slippage_bps=0),
        }
    )


def make_broker(settings: Settings, fake: FakeBinance, **kw: Any) -> CcxtBroker:
    return CcxtBroker(live_settings(settings, fake), **{"timeout_s": 0.5, "rate_limit": False, **kw})


def bar_at(fake: FakeBinance, index: int, symbol: str = SYMBOL, low: float | None = None) -> Bar:
    """The closed candle ``index`` of the fake exchange as a runtime bar."""
    o, h, lo, c, v = fake.candles[symbol.replace("/", "")][fake.bar_open_ms(index)]
    return Bar(symbol, fake.seq(index), fake.bar_open_ms(index) / 1000, o, h, lo if low is None else low, c, v)


def order(fake: FakeBinance, side: int = BUY, qty: float = 2.0, kind: str = "market", **kw: Any) -> Order:
    """What the executor would send for a decision on candle 49."""
    seq, leg = fake.seq(49), "open" if side == BUY else "close"
    return Order(f"momentum:{SYMBOL}:{seq}:{leg}", SYMBOL, side, qty, kind, leg, "momentum", seq, seq * 60.0, **kw)


# -- refusals -------------------------------------------------------------------------------


def test_refuses_without_the_live_trading_flag(settings, fake):
    with pytest.raises(TradingRefused, match="live_trading=true"):
        CcxtBroker(live_settings(settings, fake, flag=False))
    assert fake.requests == []


def test_refuses_without_credentials(settings, fake):
    no_keys = live_settings(settings, fake).model_copy(update={"exchange": ExchangeSettings(base_url=fake.url)})
    with pytest.raises(TradingRefused, match="no exchange credentials"):
        CcxtBroker(no_keys)
    half = live_settings(settings, fake, secret="")
    with pytest.raises(TradingRefused, match="no exchange credentials"):
        CcxtBroker(half)
    assert fake.requests == []


def test_wrong_credentials_fail_clearly_without_leaking_the_secret(settings, fake):
    wrong = "wrong-secret-also-private"
    broker = CcxtBroker(live_settings(settings, fake, secret=wrong), timeout_s=0.5, rate_limit=False)
    with capture_logs() as logs, pytest.raises(ExchangeError, match="refused the account check") as err:
        broker.verify()
    with capture_logs() as more, pytest.raises(ExchangeError, match="rejected the credentials") as err2:
        broker.submit(order(fake))
    text = str(err.value) + str(err2.value) + repr(logs) + repr(more)
    assert wrong not in text and API_SECRET not in text
    assert fake.orders == {}


# -- orders and fills ----------------------------------------------------------------------


def test_decision_places_a_market_order_with_its_client_order_id(settings, fake):
    s = live_settings(settings, fake)
    broker = make_broker(settings, fake)
    broker.on_bar(bar_at(fake, 49))
    executor = Executor(broker, RiskSettings(position_fraction=0.1, max_loss_per_trade=1.0), s.broker)
    price = broker.last_price[SYMBOL]
    decision = Decision(SYMBOL, fake.seq(49), fake.seq(49) * 60.0 + 60, BUY, 0.9, "momentum", "t", price, 0, 0, 5)
    report = executor.on_decision(decision)
    placed = report.orders[0]
    assert placed.client_order_id == f"momentum:{SYMBOL}:{fake.seq(49)}:open"
    [posted] = fake.posted_orders()
    assert posted["newClientOrderId"] == placed.client_order_id  # the exchange can recognise a retry
    assert (posted["symbol"], posted["side"], posted["type"]) == ("BTCUSDT", "BUY", "MARKET")
    assert float(posted["quantity"]) == pytest.approx(placed.qty, rel=1e-4)
    assert broker.has_pending(SYMBOL) and executor.on_decision(decision).skipped == "order pending"
    assert len(fake.posted_orders()) == 1


def test_fills_update_positions_and_cash_with_the_exchange_price_and_fee(settings, fake):
    fake.fee_rate = 0.002  # differs from the configured 10 bps: the exchange's fee wins
    broker = make_broker(settings, fake)
    broker.submit(order(fake, qty=2.0, stop_loss=0.05, take_profit=0.1))
    assert broker.positions == {}  # the fill is booked on the next bar, like the paper broker
    fills = broker.on_bar(bar_at(fake, 50))
    [trade] = fake.trades
    price = float(trade["price"])
    assert [(f.side, f.qty, f.purpose) for f in fills] == [(BUY, 2.0, "open")]
    assert fills[0].price == pytest.approx(price)
    assert fills[0].fee == pytest.approx(2.0 * price * 0.002)
    pos = broker.positions[SYMBOL]
    assert pos.qty == 2.0 and pos.entry_price == pytest.approx(price)
    assert pos.stop_price == pytest.approx(price * 0.95) and pos.take_price == pytest.approx(price * 1.1)
    assert broker.cash == pytest.approx(10_000 - 2.0 * price * 1.002)
    assert broker.fees_paid == pytest.approx(2.0 * price * 0.002)
    assert not broker.has_pending(SYMBOL) and broker.open_orders() == []
    assert broker.on_bar(bar_at(fake, 51)) == []  # booked once

    fake.advance(5)  # the market moves before the close
    broker.submit(order(fake, side=SELL, qty=2.0))
    [close] = broker.on_bar(bar_at(fake, 56))
    exit_price = float(fake.trades[-1]["price"])
    assert exit_price != price
    assert close.realized_pnl == pytest.approx(2.0 * (exit_price - price) - 2.0 * exit_price * 0.002)
    assert broker.positions == {}
    # Like the paper broker, realized PnL counts every fee, so cash is back to start + PnL.
    assert broker.cash == pytest.approx(10_000 + broker.realized_pnl)
    assert broker.realized_pnl == pytest.approx(2.0 * (exit_price - price) - 2.0 * (price + exit_price) * 0.002)


def test_a_retried_submit_sends_nothing_twice(settings, fake):
    broker = make_broker(settings, fake)
    o = order(fake)
    broker.submit(o)
    broker.submit(o)  # the executor or the runtime retrying
    assert len(fake.posted_orders()) == 1
    # A restarted process re-submits the orders its ledger holds as open: found, not resent.
    restarted = make_broker(settings, fake)
    restarted.submit(order(fake))
    assert len(fake.posted_orders()) == 1 and len(fake.orders) == 1
    [fill] = restarted.on_bar(bar_at(fake, 50))
    assert fill.client_order_id == o.client_order_id and restarted.positions[SYMBOL].qty == 2.0


def test_a_timed_out_submit_is_looked_up_before_any_resend(settings, fake):
    broker = make_broker(settings, fake, timeout_s=0.3)
    fake.delays["POST /api/v3/order"] = [2.0]  # the exchange takes the order but answers late
    with capture_logs() as logs:
        broker.submit(order(fake))
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["order_unconfirmed"]
    assert broker.has_pending(SYMBOL)  # fate unknown: no new decision may stack on it
    fills = broker.on_bar(bar_at(fake, 50))
    assert len(fake.posted_orders()) == 1 and len(fake.orders) == 1
    assert [f.qty for f in fills] == [2.0]
    lookups = [p for m, path, p in fake.requests if m == "GET" and path == "/api/v3/order"]
    assert lookups[-1]["origClientOrderId"] == order(fake).client_order_id


def test_an_order_that_never_arrived_is_sent_again_once(settings, fake):
    broker = make_broker(settings, fake)
    fake.errors["POST /api/v3/order"] = [503]  # refused before reaching the matching engine
    broker.submit(order(fake))
    assert fake.orders == {} and broker.has_pending(SYMBOL)
    fills = broker.on_bar(bar_at(fake, 50))
    assert len(fake.posted_orders()) == 2 and len(fake.orders) == 1
    assert [f.purpose for f in fills] == ["open"]


def test_exchange_down_rejects_the_order_after_bounded_tries(settings, fake):
    broker = make_broker(settings, fake, timeout_s=0.3, max_tries=2)
    fake.stop()
    o = order(fake)
    with capture_logs() as logs:
        broker.submit(o)
        assert broker.on_bar(bar_at(fake, 50)) == []
    assert o.status == "rejected" and not broker.has_pending(SYMBOL)
    assert [e["event"] for e in logs] == ["order_unconfirmed", "order_rejected"]
    assert "unconfirmed after 2 tries" in logs[-1]["reason"]


def test_an_abandoned_order_is_recorded_so_a_restart_does_not_resend_it(settings, fake):
    broker = make_broker(settings, fake, timeout_s=0.3, max_tries=2)
    ledger = Ledger(":memory:")
    account = {"cash": broker.cash, "realized_pnl": 0.0, "fees": 0.0}
    o = order(fake)
    fake.errors["POST /api/v3/order"] = [503]
    broker.submit(o)  # what the runtime's step does: decide, submit, commit
    ledger.commit_step(0, 0.0, [o], [], broker.positions, account, 1.0, {SYMBOL: 49}, [])
    assert [x.client_order_id for x in ledger.open_orders()] == [o.client_order_id]
    fake.stop()
    broker.on_bar(bar_at(fake, 50))
    # the runtime hands the ledger every order it still holds as "new" (Runtime._settle_inflight)
    ledger.commit_step(1, 60.0, [], [], broker.positions, account, 1.0, {SYMBOL: 50}, [o])
    assert o.status == "rejected" and ledger.open_orders() == []
    assert [r["status"] for r in ledger.orders()] == ["rejected"]


def test_an_order_the_exchange_refuses_is_rejected_not_raised(settings, fake):
    broker = make_broker(settings, fake)
    tiny = order(fake, qty=1e-9)  # below the market's lot size
    broker.submit(tiny)
    assert tiny.status == "rejected" and not broker.has_pending(SYMBOL)
    assert fake.posted_orders() == []


def test_a_resting_limit_order_fills_later_or_expires(settings, fake):
    broker = make_broker(settings, fake)
    price = bar_at(fake, 49).close
    resting = order(fake, kind="limit", limit_price=round(price * 0.99, 2), ttl_bars=3)
    broker.submit(resting)
    assert fake.posted_orders()[0]["type"] == "LIMIT"
    assert broker.on_bar(bar_at(fake, 50)) == []  # still open at the exchange
    fake.fill(resting.client_order_id)
    [fill] = broker.on_bar(bar_at(fake, 51))
    assert fill.price == pytest.approx(round(price * 0.99, 2)) and resting.status == "filled"

    expiring = order(fake, side=SELL, kind="limit", limit_price=round(price * 1.5, 2), ttl_bars=1)
    broker.submit(expiring)
    assert broker.on_bar(bar_at(fake, 52)) == []
    assert expiring.status == "expired" and not broker.has_pending(SYMBOL)
    assert fake.orders[expiring.client_order_id]["status"] == "CANCELED"


def test_stop_loss_triggers_a_market_exit_once(settings, fake):
    broker = make_broker(settings, fake)
    broker.submit(order(fake, qty=1.0, stop_loss=0.02))
    broker.on_bar(bar_at(fake, 50))
    pos = broker.positions[SYMBOL]
    crash = bar_at(fake, 51, low=pos.stop_price * 0.99)
    [exit_fill] = broker.on_bar(crash)
    exit_id = f"momentum:{SYMBOL}:{pos.entry_seq}:exit"
    assert exit_fill.purpose == "stop_loss" and exit_fill.side == SELL and exit_fill.qty == 1.0
    assert exit_fill.client_order_id == exit_id
    assert fake.posted_orders()[-1]["newClientOrderId"] == exit_id
    assert fake.posted_orders()[-1]["type"] == "MARKET"
    assert broker.positions == {}
    assert broker.on_bar(crash) == [] and len(fake.posted_orders()) == 2


def test_a_failed_protective_exit_is_tried_again_on_the_next_bar(settings, fake):
    broker = make_broker(settings, fake, max_tries=1)
    broker.submit(order(fake, qty=1.0, take_profit=0.01))
    broker.on_bar(bar_at(fake, 50))
    pos = broker.positions[SYMBOL]
    spike = Bar(SYMBOL, fake.seq(51), fake.bar_open_ms(51) / 1000, 1, pos.take_price * 1.01, 1, 1, 1)
    fake.errors["POST /api/v3/order"] = [503]
    assert broker.on_bar(spike) == [] and SYMBOL in broker.positions  # exit refused by the exchange
    [fill] = broker.on_bar(spike)
    assert fill.purpose == "take_profit" and broker.positions == {}
    assert len(fake.orders) == 2  # the entry and one exit


def test_long_client_ids_map_to_a_stable_exchange_id():
    long_id = "mean_reversion:BTC/USDT:28333384:take_profit"
    assert exchange_client_id(long_id) == exchange_client_id(long_id)
    assert len(exchange_client_id(long_id)) <= 36 and exchange_client_id(long_id) != long_id
    assert exchange_client_id("momentum:BTC/USDT:1:open") == "momentum:BTC/USDT:1:open"


# -- the live session ------------------------------------------------------------------------


def test_live_session_needs_flag_and_keys_and_checks_the_account(settings, fake):
    s = live_settings(settings, fake)
    live = s.model_copy(update={"runtime": s.runtime.model_copy(update={"mode": "live", "batch_interval_s": 0.01})})
    no_keys = live.model_copy(update={"exchange": ExchangeSettings(base_url=fake.url)})
    with pytest.raises(TradingRefused):
        build_live_session(no_keys)
    assert fake.requests == []

    feed = CcxtPollingFeed(live, clock=fake.clock, timeout_s=0.5, min_poll_s=0, rate_limit=False)
    session = build_live_session(live, feed=feed)
    assert isinstance(session.runtime.broker, CcxtBroker)
    assert session.ledger_path == s.data_dir / "live" / "ledger.db"
    assert ("GET", "/api/v3/account") in [(m, p) for m, p, _ in fake.requests]
    fake.clock.bars_per_sleep = 1
    summary = asyncio.run(asyncio.wait_for(session.runtime.run(max_steps=2), 20))
    assert summary.steps == 2 and session.ledger.cursor() == {SYMBOL: fake.seq(51)}
    session.ledger.close()
