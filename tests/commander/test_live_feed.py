"""The commander on a live market: one collector (the local fake Binance's REST API and its
WebSocket kline stream, through the real ccxt client) feeds both slots, real slot processes.

The fake exchange's clock runs on its own (one 1-minute candle every ``BAR_EVERY_S``), so
candles close, stream and get backfilled as they would on the real exchange, only faster."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_exchange import FakeBinance

from commander.alerts import read_alerts
from commander.engine import Commander
from commander.observer import CommanderObserver
from commander.protocol import Done, Fault, Role, RoleOp, Warmup
from commander.requests import request_deployment
from commander.runs import SlotRun
from commander.source import LiveSource
from commander.status import commander_dir
from sorte import paths
from sorte.config import PairsSettings, Settings
from sorte.market import Collector, read_health
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import Bar
from tests.commander.commander_env import deployment_settled, head, history
from tests.market.market_env import SYMBOLS, ExchangeTime
from tests.project_repo import copy_project

pytestmark = pytest.mark.slow

BAR_EVERY_S = 0.15


class Ticking:
    """Moves the fake exchange on by one candle every ``every_s`` in a thread, once ``go`` is
    set, calling ``events[n]`` after the ``n``-th candle (a dropped socket, an outage)."""

    def __init__(
        self, fake: FakeBinance, every_s: float = BAR_EVERY_S, events: dict[int, Callable[[], object]] | None = None
    ) -> None:
        self.fake, self.every_s, self.events = fake, every_s, events or {}
        self.go, self.stopped = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.bars = 0

    def _run(self) -> None:
        self.go.wait()
        while not self.stopped.wait(self.every_s):
            self.fake.advance(1)
            self.bars += 1
            if self.bars in self.events:
                self.events[self.bars]()

    def __enter__(self) -> Ticking:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("live") / "repo")


@pytest.fixture()
def fake() -> Iterator[FakeBinance]:
    exchange = FakeBinance(tuple(SYMBOLS), bars=400, future=4000).start().start_stream()
    yield exchange
    exchange.stop()


def live_settings(repo: Path, data_dir: Path, fake: FakeBinance, **commander: object) -> Settings:
    options = {"shadow_bars": 30, "watch_bars": 30, "warm_bars": 30, "analysis": {"min_bars": 20}}
    options.update(commander)
    return Settings(
        data_dir=data_dir,
        strategies_dir=repo / "strategies",
        git={"repo_root": str(repo)},
        runtime={"feed": "ccxt", "symbols": SYMBOLS},
        exchange={"base_url": fake.url, "ws_url": fake.ws_url, "timeframe": "1m"},
        market={
            "prefetch_bars": 200,
            "stale_intervals": 20,
            "poll_interval_s": 0.2,
            "reconnect_backoff_s": 0.05,
            "reconnect_backoff_max_s": 0.2,
            "request_timeout_s": 2.0,
        },
        commander=options,
    )


def commander_on(settings: Settings, fake: FakeBinance, observer: CommanderObserver | None = None) -> Commander:
    """The commander with its collector on the fake exchange's clock (the only injection)."""
    source = LiveSource(Collector(settings, clock=ExchangeTime(fake)))
    return Commander(settings, source=source, observer=observer)


class Steps(CommanderObserver):
    """What the active slot was sent, step by step; the exchange starts ticking at the first."""

    def __init__(self, ticking: Ticking) -> None:
        self.ticking = ticking
        self.sent: list[tuple[list[Bar], bool]] = []
        self.age_s: list[float] = []  # how long ago the step's candle closed, on the exchange's clock

    def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
        if run.role == "active":
            assert isinstance(reply, Done), reply
            self.sent.append((bars, entries))
            self.age_s.append(self.ticking.fake.now_ms / 1000 - (bars[0].ts + 60))

    async def before_between_steps(self) -> None:
        self.ticking.go.set()  # the commander runs: the market may move


def spy_warmups(commander: Commander) -> list[tuple[Warmup, dict[str, int]]]:
    """The warm-up each role carried, with the commander's last bar sent at the time."""
    sent: list[tuple[Warmup, dict[str, int]]] = []
    role_op = commander.slot_runs.role_op

    def spy(role: Role, epoch: int) -> RoleOp:
        op = role_op(role, epoch)
        assert op.warmup is not None, "a live feed's role carries the warm-up"
        sent.append((op.warmup, dict(commander.feed_last)))
        return op

    commander.slot_runs.role_op = spy  # type: ignore[method-assign]
    return sent


def ledger_cursor(settings: Settings) -> dict[str, int]:
    ledger = Ledger(paths.commander_ledger(commander_dir(settings.data_dir)), durable=False)
    try:
        return ledger.cursor()
    finally:
        ledger.close()


def test_an_a_a_deployment_is_promoted_on_live_candles_with_no_bar_lost(repo, tmp_path, fake) -> None:
    settings = live_settings(repo, tmp_path / "var", fake)
    with Ticking(fake) as ticking:
        first_steps = Steps(ticking)
        first = commander_on(settings, fake, first_steps)
        first_warmups = spy_warmups(first)
        asyncio.run(first.run(max_ticks=20))  # the first deployment trades alone, from no cursor
        cursor = ledger_cursor(settings)
        d = request_deployment(settings.data_dir, head(repo), "test", "aa")
        commander = commander_on(settings, fake)
        warmups = spy_warmups(commander)
        asyncio.run(commander.run(max_ticks=400, until=deployment_settled(settings, d.id)))

    # The very first slot started warm too: the lookback ends just before the first bar it was sent.
    (warmup, _), first_bars = first_warmups[0], first_steps.sent[0][0]
    for b in first_bars:
        assert len(warmup.bars[b.symbol]) >= 200 and warmup.bars[b.symbol][-1][0] == b.seq - 1
    # Each slot started warm: the lookback came from the commander's cache, up to the last bar sent.
    assert len(warmups) >= 2
    for warmup, last in warmups:
        for symbol in SYMBOLS:
            rows = warmup.bars[symbol]
            assert len(rows) >= 200 and rows[-1][0] == last[symbol]
            assert [r[0] for r in rows] == list(range(int(rows[0][0]), int(rows[0][0]) + len(rows)))
    h = history(settings)
    assert h.get(d.id).state == "active" and h.get(d.id).slot == "green"
    assert h.get(d.id).analysis["verdict"] == "pass"
    # The restart resumed from the ledger's cursor: every candle since came once, in order.
    assert commander.report().feed_gaps == 0
    after = ledger_cursor(settings)
    assert all(after[s] > cursor[s] + 30 for s in SYMBOLS)
    health = read_health(paths.feed_health(commander_dir(settings.data_dir)))
    assert health is not None and health.source == "binance" and health.streamed_candles > 0
    assert {s.symbol for s in health.symbols} == set(SYMBOLS)


def test_dropped_sockets_and_an_outage_lose_no_bar_and_old_prices_take_no_entries(repo, tmp_path, fake) -> None:
    settings = live_settings(repo, tmp_path / "var", fake)
    settings = settings.model_copy(update={"market": settings.market.model_copy(update={"stale_intervals": 5})})
    events: dict[int, Callable[[], object]] = {n: fake.drop_streams for n in (10, 20, 30)}
    events[45] = lambda: fake.set_down(True)
    events[65] = lambda: fake.set_down(False)
    with Ticking(fake, events=events) as ticking:
        steps = Steps(ticking)
        commander = commander_on(settings, fake, steps)
        asyncio.run(commander.run(until=lambda c: ticking.bars >= 100))

    # Every candle from the first to the last, once and in order, for every symbol.
    for symbol in SYMBOLS:
        seqs = [b.seq for bars, _ in steps.sent for b in bars if b.symbol == symbol]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), symbol
        assert len(seqs) >= 90
    assert commander.report().feed_gaps == 0
    # The outage: an alert, the missed candles backfilled, and no entry on their old prices.
    kinds = [a["kind"] for a in read_alerts(commander_dir(settings.data_dir), limit=100)]
    assert "feed_stale" in kinds and "feed_recovered" in kinds
    entries = [e for _, e in steps.sent]
    old = [e for e, age in zip(entries, steps.age_s, strict=True) if age > 5 * 60]
    recent = [e for e, age in zip(entries, steps.age_s, strict=True) if age < 2 * 60]
    assert len(old) >= 10 and not any(old)
    assert len(recent) >= 50 and all(recent)
    health = read_health(paths.feed_health(commander_dir(settings.data_dir)))
    assert health is not None and health.reconnects >= 3 and health.backfilled_candles >= 15


def test_pair_selection_adds_and_drops_symbols_and_keeps_one_with_an_open_position(repo, tmp_path) -> None:
    fake = FakeBinance(("BTC/USDT", "ETH/USDT", "SOL/USDT"), bars=400, future=6000).start().start_stream()
    for symbol, volume in (("BTC/USDT", 5e6), ("ETH/USDT", 4e6), ("SOL/USDT", 1e6)):
        fake.set_ticker(symbol, quote_volume=volume)
    settings = live_settings(repo, tmp_path / "var", fake)
    pairs = {"enabled": True, "number_assets": 2, "min_quote_volume": 1e5, "refresh_s": 10, "blacklist": []}
    market = settings.market.model_copy(update={"pairs": PairsSettings(**pairs, min_volatility_pct=0)})
    settings = settings.model_copy(update={"market": market})
    books: list[dict[str, object]] = []
    swapped: list[int] = []

    class Watch(Steps):
        def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
            super().on_step_reply(run, bars, entries, reply)
            if run.role == "active" and isinstance(reply, Done):
                books.append(reply.book)
                if not swapped and "ETH/USDT" in reply.book["positions"]:
                    fake.set_ticker("ETH/USDT", quote_volume=5e5)  # ETH falls out of the top two
                    swapped.append(len(steps.sent))
                    assert commander.pairs is not None
                    commander.pairs.refresh_soon()  # while the position is open, not refresh_s later

    def dropped_eth(c: Commander) -> bool:
        return bool(swapped) and "ETH/USDT" not in c.feed.symbols

    try:
        with Ticking(fake) as ticking:
            steps = Watch(ticking)
            commander = commander_on(settings, fake, steps)
            asyncio.run(commander.run(max_ticks=400, until=dropped_eth))
    finally:
        fake.stop()

    assert swapped, "the active slot never held ETH/USDT"
    alerts = [a for a in read_alerts(commander_dir(settings.data_dir), limit=100) if a["kind"] == "pairs_changed"]
    kept = next(a for a in alerts if a["kept"] == ["ETH/USDT"])
    assert kept["added"] == ["SOL/USDT"], alerts
    assert alerts[-1]["dropped"] == ["ETH/USDT"] and commander.feed.symbols == ["BTC/USDT", "SOL/USDT"]
    sent = [(b.symbol, b.seq) for bars, _ in steps.sent for b in bars]
    eth = [seq for symbol, seq in sent if symbol == "ETH/USDT"]
    assert eth == list(range(eth[0], eth[0] + len(eth)))  # ETH's bars went on, whole, while it was held
    last_eth_step = max(i for i, (bars, _) in enumerate(steps.sent) if any(b.symbol == "ETH/USDT" for b in bars))
    assert "ETH/USDT" not in books[last_eth_step]["positions"]  # ... until its position closed
    sol = [seq for symbol, seq in sent if symbol == "SOL/USDT"]
    assert len(sol) >= 5 and sol == list(range(sol[0], sol[0] + len(sol)))
    assert commander.report().feed_gaps == 0
