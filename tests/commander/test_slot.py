"""A slot in-process (no subprocess): roles, the fenced ledger, gaps, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commander.lease import Lease
from commander.protocol import RoleOp, StepOp, bar_row, settings_payload
from commander.slot import Slot, book, fault_kind
from commander.source import ledger_path, open_source
from sorte.config import BrokerSettings, Settings
from sorte.runtime.broker import PaperBroker
from sorte.runtime.ledger import Ledger, open_owned
from sorte.runtime.values import Order

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", runtime={"demo_bars": 600})


@pytest.fixture
def cdir(settings: Settings) -> Path:
    path = settings.data_dir / "commander"
    open_owned(ledger_path(path), open_source(settings).fingerprint, False, "feed").close()
    return path


def batches(settings: Settings, n: int) -> list[list[list]]:
    feed = open_source(settings)

    async def take() -> list[list[list]]:
        return [[bar_row(b) for b in await feed.next_batch()] for _ in range(n)]

    return asyncio.run(take())


def run(coro):
    return asyncio.run(coro)


async def _step(slot: Slot, tick: int, rows: list[list]) -> dict:
    """The slot's reply as it goes on the wire."""
    return (await slot.step(StepOp(tick=tick, bars=rows))).model_dump()


async def _drive(slot: Slot, settings: Settings, role: str, epoch: int, steps: list[list[list]], start: int = 1):
    ready = await slot.set_role(RoleOp(role=role, epoch=epoch, settings=settings_payload(settings)))
    replies = [await _step(slot, start + i, rows) for i, rows in enumerate(steps)]
    return ready.model_dump(), replies


def test_the_active_role_commits_every_step_under_its_epoch(settings, cdir, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    epoch = Lease(cdir).acquire("blue", None).epoch
    slot = Slot("blue", cdir)
    ready, replies = run(_drive(slot, settings, "active", epoch, batches(settings, 300)))
    assert ready["ev"] == "ready" and ready["cursor"] == {}
    assert [r["ev"] for r in replies] == ["done"] * 300
    ledger = Ledger(ledger_path(cdir), durable=False)
    assert set(ledger.cursor().values()) == {299}
    ids = [o["client_order_id"] for o in ledger.orders()]
    assert ids and all(i.startswith(f"e{epoch}:") for i in ids)


def test_a_shadow_writes_nothing_and_starts_from_the_book(settings, cdir, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    epoch = Lease(cdir).acquire("blue", None).epoch
    steps = batches(settings, 150)
    active = Slot("blue", cdir)
    run(_drive(active, settings, "active", epoch, steps[:100]))
    before = Ledger(ledger_path(cdir), durable=False).equity_curve()
    shadow = Slot("green", cdir)
    ready, replies = run(_drive(shadow, settings, "shadow", 0, steps[100:], start=101))
    assert ready["cursor"] == {s: 99 for s in ready["cursor"]} and ready["cursor"]
    assert ready["book"]["cash"] == active.runtime.broker.cash
    assert all(r["ev"] == "done" for r in replies)
    assert Ledger(ledger_path(cdir), durable=False).equity_curve() == before, "the shadow book is private"


def test_after_the_lease_moved_the_old_active_cannot_commit(settings, cdir, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    lease = Lease(cdir)
    epoch = lease.acquire("blue", None).epoch
    steps = batches(settings, 12)
    slot = Slot("blue", cdir)
    run(_drive(slot, settings, "active", epoch, steps[:10]))
    lease.transfer("blue", "green", epoch)
    reply = run(_step(slot, 11, steps[10]))
    assert reply["ev"] == "fault" and reply["kind"] == "stale_epoch"
    assert set(Ledger(ledger_path(cdir), durable=False).cursor().values()) == {9}
    assert run(_step(slot, 12, steps[11]))["kind"] == "broken"


def test_a_gap_in_the_bar_sequence_is_a_fault(settings, cdir, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    steps = batches(settings, 5)
    slot = Slot("green", cdir)
    _, replies = run(_drive(slot, settings, "shadow", 0, [steps[0], steps[1], steps[3]]))
    assert [r["ev"] for r in replies] == ["done", "done", "fault"]
    assert replies[2]["kind"] == "gap" and "seq 3 after 1" in replies[2]["detail"]


def test_faults_are_classified_by_where_they_were_raised() -> None:
    def order_path():
        from sorte.runtime.executor import Executor

        raise_in = Executor.on_decision
        raise_in(None, None)  # type: ignore[arg-type]

    with pytest.raises(AttributeError) as caught:
        order_path()
    assert fault_kind(caught.value) == "order_path"
    assert fault_kind(ValueError("x")) == "decision_path"


def test_the_book_names_the_symbols_its_open_orders_rest_on() -> None:
    broker = PaperBroker(BrokerSettings())
    assert book(broker)["order_symbols"] == []
    for cid, symbol in (("e3:10:ETH/USDT", "ETH/USDT"), ("e4:11:BTC/USDT:USDT:x", "BTC/USDT:USDT")):
        broker.submit(Order(cid, symbol, 1, 0.5, "limit", "open", "s", 10, 0.0, limit_price=100.0))
    seen = book(broker)
    assert seen["order_symbols"] == ["BTC/USDT:USDT", "ETH/USDT"]  # a futures symbol's colon is no trouble
    assert seen["open_orders"] == ["10:ETH/USDT", "11:BTC/USDT:USDT:x"]  # ids compared without the epoch


def test_a_live_warm_up_starts_from_the_newest_bars_sent() -> None:
    from commander.protocol import Warmup
    from commander.source import WarmupHistory

    rows = [[seq, 60.0 * seq, 1.0, 2.0, 0.5, float(seq), 10.0] for seq in (7, 5, 6, 8)]  # any order on the wire
    history = WarmupHistory(Warmup(interval_s=60.0, bars={"ETH/USDT": rows}))
    assert list(history.last("ETH/USDT", 3).close) == [6.0, 7.0, 8.0]
    assert list(asyncio.run(history.history("ETH/USDT", 8, 2)).close) == [6.0, 7.0]  # before seq 8
    assert len(history.last("ETH/USDT", 0).close) == 0 and len(history.last("SOL/USDT", 5).close) == 0
