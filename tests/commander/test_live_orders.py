"""A live account under the commander (runtime.mode=live) on the local fake Binance, through
the real ccxt client: the active slot's orders reach the exchange through the commander's
gateway, once each, under the lease epoch; shadows never reach it; the account is reconciled
on every change of lease holder; a kill -9 of the active slot or of the commander with orders
open at the exchange sends nothing twice; an account that differs from the ledger is not
traded, with an alert saying what differs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_exchange import API_KEY, API_SECRET, FakeBinance

from commander.alerts import read_alerts
from commander.lease import Lease
from commander.reconcile import read_reconciliation
from commander.requests import request_deployment
from commander.status import commander_dir
from sorte import paths
from sorte.config import Settings
from sorte.runtime.ledger import Ledger
from tests.commander.commander_env import deployment_settled, head, history
from tests.commander.test_chaos import busy_repo
from tests.commander.test_live_feed import Steps, Ticking, commander_on, live_settings
from tests.market.market_env import SYMBOLS

pytestmark = pytest.mark.slow

EPOCH = re.compile(r"^e(\d+):")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busy_repo(tmp_path_factory.mktemp("orders") / "repo")[0]


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(SYMBOLS), bars=400, future=6000).start().start_stream()
    yield exchange
    exchange.stop()


def live_account(repo: Path, data_dir: Path, fake: FakeBinance, **commander: Any) -> Settings:
    settings = live_settings(repo, data_dir, fake, **commander)
    update = {
        "runtime": settings.runtime.model_copy(update={"mode": "live", "live_trading": True}),
        "exchange": settings.exchange.model_copy(update={"api_key": API_KEY, "api_secret": API_SECRET}),
    }
    return Settings.model_validate({**settings.model_dump(), **{k: v.model_dump() for k, v in update.items()}})


def decision(cid: str) -> str:
    """An order's decision and leg, whatever the epoch it was placed under."""
    return EPOCH.sub("", cid)


def exchange_orders(fake: FakeBinance) -> list[str]:
    """Client ids of the orders the exchange accepted, in the order they came."""
    return [p["newClientOrderId"] for p in fake.posted_orders() if p.get("newClientOrderId") in fake.orders]


def check_account(settings: Settings, fake: FakeBinance) -> None:
    """The exchange's orders are the ledger's, once per decision, each under an epoch; every
    fill the ledger booked is the exchange's, at its quantity and price."""
    placed = exchange_orders(fake)
    assert placed, "no order reached the exchange"
    assert all(EPOCH.match(cid) for cid in placed), placed  # a shadow's paper order never got there
    twice = [d for d, n in Counter(map(decision, placed)).items() if n > 1]
    assert not twice, f"decisions sent twice: {twice}"
    ledger = Ledger(paths.commander_ledger(commander_dir(settings.data_dir)), durable=False)
    try:
        known = {o["client_order_id"] for o in ledger.orders()}
        fills = ledger.fills()
    finally:
        ledger.close()
    assert set(placed) <= known, set(placed) - known
    for f in fills:
        order = fake.orders[f.client_order_id]
        assert order["status"] == "FILLED" and float(order["executedQty"]) == f.qty
        assert f.price == pytest.approx(float(order["cummulativeQuoteQty"]) / f.qty)


def test_the_active_slot_trades_through_the_gateway_and_each_hand_over_is_reconciled(repo, tmp_path, fake) -> None:
    settings = live_account(repo, tmp_path / "var", fake)
    with Ticking(fake) as ticking:
        first = commander_on(settings, fake, Steps(ticking))
        asyncio.run(first.run(max_ticks=30))
        d = request_deployment(settings.data_dir, head(repo), "test", "aa")
        commander = commander_on(settings, fake, Steps(ticking))
        asyncio.run(commander.run(max_ticks=400, until=deployment_settled(settings, d.id)))

    h = history(settings)
    assert h.get(d.id).state == "active", h.get(d.id)
    check_account(settings, fake)
    lease = Lease(commander_dir(settings.data_dir))
    epoch = lease.current().epoch
    lease.close()
    placed = exchange_orders(fake)
    epochs = [int(EPOCH.match(cid).group(1)) for cid in placed]  # type: ignore[union-attr]
    assert epochs == sorted(epochs) and epochs[-1] == epoch  # never an older epoch after a newer one
    assert len(set(epochs)) >= 2  # orders before and after the hand-over
    assert commander.gateway is not None and commander.gateway.rejected_stale == 0
    done = read_reconciliation(paths.account_dir(settings.data_dir))
    assert done is not None and done.ok and done.epoch == epoch, done
    assert not [a for a in read_alerts(commander_dir(settings.data_dir)) if a["kind"] == "reconcile_mismatch"]


def test_an_account_that_differs_from_the_ledger_is_not_traded_until_it_matches(repo, tmp_path, fake) -> None:
    settings = live_account(repo, tmp_path / "var", fake, reconcile_retry_s=0.5)
    plant_at, fix_at = 20, 40
    with Ticking(fake) as ticking:
        first = commander_on(settings, fake, Steps(ticking))
        asyncio.run(first.run(max_ticks=15))  # trades, and records the account's baseline
        before = len(exchange_orders(fake))
        fake.balances["BTC"] += 0.25  # bought behind Sorte's back between two runs
        fake.plant_order("ETH/USDT", "BUY", 1.0, 50.0, "manual-1")
        commander = commander_on(settings, fake, Steps(ticking))
        steps: list[tuple[int, int]] = []  # (orders at the exchange, step) as the commander went

        def watch(c: Any) -> bool:
            steps.append((len(exchange_orders(fake)), c.tick))
            if c.tick == fix_at:  # the operator puts the account right
                fake.balances["BTC"] -= 0.25
                fake.cancel({"origClientOrderId": "manual-1"})
            return c.tick >= fix_at + 40

        asyncio.run(commander.run(max_ticks=200, until=watch))
        assert ticking.bars > plant_at

    alerts = read_alerts(commander_dir(settings.data_dir), limit=100)
    mismatch = [a for a in alerts if a["kind"] == "reconcile_mismatch"]
    assert mismatch, alerts
    text = mismatch[0]["message"]
    assert "trading refused" in text and "BTC balance is" in text and "open order manual-1" in text
    held = [n for n, tick in steps if tick < fix_at]
    assert held and all(n == before for n in held), "an order was sent while the account differed"
    assert any(a["kind"] == "reconciled" for a in alerts)
    assert len(exchange_orders(fake)) > before  # trading resumed once it matched
    check_account(settings, fake)


# -- kill -9 with orders open at the exchange ----------------------------------------------------
def commander_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "sorte.cli.main", "commander", "--feed", "ccxt", "--symbols", ",".join(SYMBOLS), "-q"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=env["SORTE_GIT__REPO_ROOT"], stdout=out, stderr=subprocess.STDOUT)


def wait(what: str, ok: Any, timeout: float = 120.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"; log:\n{log.read_text()[-4000:]}" if log else ""))


def lease_epoch(data_dir: Path) -> int:
    lease = Lease(commander_dir(data_dir))
    try:
        return lease.current().epoch
    finally:
        lease.close()


def resting(fake: FakeBinance) -> list[str]:
    with fake.lock:
        return [cid for cid, o in fake.orders.items() if o["status"] == "NEW"]


def active_slot_pid(data_dir: Path) -> int:
    lease = Lease(commander_dir(data_dir))
    holder = lease.current().holder
    lease.close()
    found = subprocess.run(
        ["pgrep", "-f", f"commander.slot --slot {holder} .*{commander_dir(data_dir)}"], capture_output=True, text=True
    )
    pids = [int(p) for p in found.stdout.split()]
    assert len(pids) == 1, (holder, found.stdout)
    return pids[0]


def reconciled_at(data_dir: Path, epoch: int) -> bool:
    done = read_reconciliation(paths.account_dir(data_dir))
    return done is not None and done.epoch == epoch


def process_env(repo: Path, data_dir: Path, fake: FakeBinance) -> dict[str, str]:
    """`sorte commander` on a live account, configured the way a user would: the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    return {
        **clean,
        "SORTE_DATA_DIR": str(data_dir),
        "SORTE_STRATEGIES_DIR": str(repo / "strategies"),
        "SORTE_GIT__REPO_ROOT": str(repo),
        "SORTE_RUNTIME__MODE": "live",
        "SORTE_RUNTIME__LIVE_TRADING": "true",
        "SORTE_EXCHANGE__BASE_URL": fake.url,
        "SORTE_EXCHANGE__WS_URL": fake.ws_url,
        "SORTE_EXCHANGE__API_KEY": API_KEY,
        "SORTE_EXCHANGE__API_SECRET": API_SECRET,
        "SORTE_MARKET__STALE_INTERVALS": "1000",
        "SORTE_COMMANDER__RESTART_BACKOFF_S": "0.2",
    }


def ticking(fake: FakeBinance) -> threading.Event:
    """Ten candles a second, like `sorte up`'s live test, until the event is set."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.1):
            fake.advance(1)

    threading.Thread(target=tick, daemon=True).start()
    return stop


@dataclass
class LiveCommander:
    """`sorte commander` as a process on a live account of a ticking fake exchange."""

    fake: FakeBinance
    env: dict[str, str]
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def wait(self, what: str, ok: Any) -> None:
        wait(what, ok, log=self.log)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(60) == 0, self.log.read_text()[-4000:]


@contextlib.contextmanager
def live_commander(repo: Path, tmp_path: Path) -> Iterator[LiveCommander]:
    fake = FakeBinance(tuple(SYMBOLS), bars=400, future=20_000).start().start_stream()
    data_dir, log = tmp_path / "var", tmp_path / "commander.log"
    env = process_env(repo, data_dir, fake)
    stop = ticking(fake)
    run = LiveCommander(fake, env, data_dir, log, commander_process(env, log))
    try:
        yield run
    finally:
        stop.set()
        if run.proc.poll() is None:
            run.proc.kill()
        fake.stop()


def test_kill_9_of_the_active_slot_and_the_commander_with_orders_open_sends_nothing_twice(repo, tmp_path) -> None:
    with live_commander(repo, tmp_path) as run:
        fake, data_dir, log = run.fake, run.data_dir, run.log
        wait("orders filled at the exchange", lambda: len(exchange_orders(fake)) >= 4, log=log)
        fake.fill_market = False  # from here market orders rest: open at the exchange
        wait("an order resting at the exchange", lambda: bool(resting(fake)), log=log)
        epoch = lease_epoch(data_dir)
        os.kill(active_slot_pid(data_dir), signal.SIGKILL)  # the active slot, with an order open
        wait("the restarted slot's reconciliation", lambda: reconciled_at(data_dir, epoch + 1), log=log)
        wait("another order resting", lambda: len(resting(fake)) >= 2, log=log)
        run.proc.send_signal(signal.SIGKILL)  # the commander, with orders open
        run.proc.wait(10)
        open_at_kill = set(resting(fake))
        run.proc = commander_process(run.env, log)
        wait("the new commander's reconciliation", lambda: reconciled_at(data_dir, epoch + 2), log=log)
        for cid in resting(fake):  # the exchange fills what rested, while nobody looks at it
            fake.fill(cid)
        fake.fill_market = True
        before = len(exchange_orders(fake))
        wait("trading going on", lambda: len(exchange_orders(fake)) >= before + 4, log=log)
        run.stop()

    settings = Settings(data_dir=data_dir)
    for epoch_seen in (epoch + 1, epoch + 2):
        assert epoch_seen <= lease_epoch(data_dir)
    done = read_reconciliation(paths.account_dir(data_dir))
    assert done is not None and done.ok, done
    assert open_at_kill, "no order was open when the commander was killed"
    assert not [a for a in read_alerts(commander_dir(data_dir)) if a["kind"] == "reconcile_mismatch"]
    check_account(settings, fake)


def sorte(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sorte.cli.main", *args]
    return subprocess.run(cmd, env=env, cwd=env["SORTE_GIT__REPO_ROOT"], capture_output=True, text=True, timeout=180)


def test_a_deposit_refuses_trading_until_the_operator_accepts_it_with_sorte_reconcile(repo, tmp_path) -> None:
    with live_commander(repo, tmp_path) as run:
        fake, env, data_dir, log = run.fake, run.env, run.data_dir, run.log
        wait("orders filled at the exchange", lambda: len(exchange_orders(fake)) >= 2, log=log)
        epoch = lease_epoch(data_dir)
        with fake.lock:
            fake.balances["USDT"] += 1_000.0  # the trader funds the account
        os.kill(active_slot_pid(data_dir), signal.SIGKILL)  # a change of lease holder: reconciled
        wait("the new epoch's reconciliation", lambda: reconciled_at(data_dir, epoch + 1), log=log)
        shown = sorte(env, "reconcile")
        assert shown.returncode == 1, shown.stdout + shown.stderr
        assert "TRADING REFUSED" in shown.stdout and "USDT balance is" in shown.stdout
        held = len(exchange_orders(fake))
        time.sleep(3)  # thirty candles while refused
        assert len(exchange_orders(fake)) == held, "an order was sent while the account differed"
        accepted = sorte(env, "reconcile", "--accept", "--yes")
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr + log.read_text()[-3000:]
        assert "balances accepted" in accepted.stdout and "trading resumes" in accepted.stdout
        wait("trading going on", lambda: len(exchange_orders(fake)) >= held + 2, log=log)
        run.stop()

    kinds = [a["kind"] for a in read_alerts(commander_dir(data_dir), limit=200)]
    assert "reconcile_mismatch" in kinds and "balances_accepted" in kinds and "reconciled" in kinds
    done = read_reconciliation(paths.account_dir(data_dir))
    assert done is not None and done.ok, done
    check_account(Settings(data_dir=data_dir), fake)


def test_sorte_commander_refuses_real_orders_without_keys_or_without_a_live_feed(tmp_path) -> None:
    from sorte.config import REPO_ROOT

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SORTE_")}
    env = {
        **clean,
        "SORTE_DATA_DIR": str(tmp_path / "var"),
        "SORTE_RUNTIME__MODE": "live",
        "SORTE_RUNTIME__LIVE_TRADING": "true",
        "SORTE_EXCHANGE__BASE_URL": "http://127.0.0.1:9",  # nothing is ever asked
    }
    cmd = [sys.executable, "-m", "sorte.cli.main", "commander", "-q"]
    no_keys = subprocess.run(
        [*cmd, "--feed", "ccxt", "--symbols", "BTC/USDT"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_keys.returncode != 0
    assert "no exchange credentials" in no_keys.stdout + no_keys.stderr
    keyed = {**env, "SORTE_EXCHANGE__API_KEY": API_KEY, "SORTE_EXCHANGE__API_SECRET": API_SECRET}
    replay = subprocess.run(
        [*cmd, "--feed", "replay"], env=keyed, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert replay.returncode != 0
    assert "runtime.mode=live needs runtime.feed=ccxt, not replay" in replay.stdout + replay.stderr
    assert not (paths.account_dir(tmp_path / "var") / "orders.sqlite").exists()


def test_an_order_lost_on_its_way_is_placed_again_under_the_new_epoch_when_the_slot_restarts(
    repo, tmp_path, fake
) -> None:
    """The exchange answers the sends of one step with 503 (execution unknown; they never
    arrived), and the active slot is killed right after: once the answer window has passed (a
    late request could still have landed until then), the restarted slot, at a new epoch, places
    those orders again with the new epoch's ids; each decision reaches the exchange once."""
    settings = live_account(repo, tmp_path / "var", fake, order_answer_window_s=6.0)
    lost: list[str] = []

    class LoseOneStep(Steps):
        def on_step_reply(self, run, bars, entries, reply) -> None:
            super().on_step_reply(run, bars, entries, reply)
            if not lost and run.role == "active" and reply.orders:
                lost.extend(o.client_order_id for o in reply.orders)
                fake.errors["POST /api/v3/order"] += [503] * len(reply.orders)
                os.kill(run.client.process.proc.pid, signal.SIGKILL)

    with Ticking(fake) as ticking:
        commander = commander_on(settings, fake, LoseOneStep(ticking))

        def placed_again(c: Any) -> bool:
            done = {decision(cid) for cid in exchange_orders(fake)}
            return bool(lost) and c.restarts >= 1 and all(decision(cid) in done for cid in lost)

        asyncio.run(commander.run(max_ticks=400, until=placed_again))

    assert lost and commander.restarts >= 1
    placed = exchange_orders(fake)
    assert not set(lost) & set(placed)  # the lost sends never arrived ...
    again = [cid for cid in placed if decision(cid) in {decision(c) for c in lost}]
    assert sorted(map(decision, again)) == sorted(map(decision, lost))  # ... and each came again, once
    assert all(EPOCH.match(cid).group(1) != EPOCH.match(lost[0]).group(1) for cid in again)  # type: ignore[union-attr]
    ledger = Ledger(paths.commander_ledger(commander_dir(settings.data_dir)), durable=False)
    try:
        status = {o["client_order_id"]: o["status"] for o in ledger.orders()}
    finally:
        ledger.close()
    assert all(status[cid] == "rejected" for cid in lost)  # in the book: never reached the exchange
    check_account(settings, fake)
