"""The commander end to end with real slot processes on the bundled replay market.

Every test warms the account up first (the first deployment trades 150 steps alone), then
deploys a candidate commit of a throw-away copy of the project and checks what the history,
the lease, the ledger and the alerts say afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from commander.alerts import read_alerts
from commander.engine import Commander
from commander.lease import Lease
from commander.pipeline import WATCH_PASSED
from commander.status import commander_dir
from tests.commander.commander_env import commander_settings, deploy, head, history, ledger_orders
from tests.project_repo import branch, copy_project, patch_function

pytestmark = pytest.mark.slow

WARM_UP = 150
ORDER_PATH_BUG = (
    '        order = Order(\n            f"{d.strategy}:{symbol}:{d.seq}:open",',
    '        raise RuntimeError("candidate bug in the order path")\n'
    '        order = Order(\n            f"{d.strategy}:{symbol}:{d.seq}:open",',
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("commander") / "repo")


@pytest.fixture
def settings(repo: Path, tmp_path: Path):
    s = commander_settings(repo, tmp_path / "var")
    asyncio.run(Commander(s).run(max_ticks=WARM_UP))  # the first deployment trades alone
    return s


def candidate(repo: Path, name: str, rel: str, old: str, new: str) -> str:
    return branch(repo, name, {rel: patch_function(repo, rel, old, new)})


def alerts(settings) -> list[dict]:
    return read_alerts(commander_dir(settings.data_dir), limit=1000)


def test_a_a_deploy_promotes_hands_the_book_over_and_keeps_the_old_slot_warm(repo, settings) -> None:
    did, report = deploy(settings, head(repo), "aa")
    h = history(settings)
    d = h.get(did)
    assert d.state == "active" and d.slot == "green"
    assert d.analysis["verdict"] == "pass"
    assert WATCH_PASSED in [e.reason for e in h.events(did)]
    first = h.get(1)
    assert first.state in ("warm", "retired") and first.slot == "blue"
    [handoff] = report.handoffs
    assert handoff.kind == "promote" and handoff.book_matches and handoff.epoch == d.epoch
    assert handoff.gap_ms is not None and handoff.gap_ms > 0
    with Lease(commander_dir(settings.data_dir)) as lease:
        # 1: the first deployment; 2: this commander's takeover on start; 3: the promotion
        assert lease.current().holder == "green" and lease.current().epoch == d.epoch == 3
    orders = ledger_orders(settings)
    ids = [o["client_order_id"] for o in orders]
    assert len(ids) == len(set(ids)) and ids, "every order once"
    assert {i.split(":")[0] for i in ids} <= {"e1", "e2", "e3"}
    assert any(a["kind"] == "deployment_promoted" for a in alerts(settings))


def test_a_candidate_that_raises_in_the_order_path_never_stays_active(repo, settings) -> None:
    sha = candidate(repo, "order-bug", "sorte/runtime/executor.py", *ORDER_PATH_BUG)
    did, _ = deploy(settings, sha, "bug")
    d = history(settings).get(did)
    assert d.state in ("rejected", "rolled_back")
    assert "order_path" in d.reason and "candidate bug in the order path" in d.reason
    assert history(settings).active().id == 1
    assert history(settings).is_rejected(sha)
    assert any("candidate bug in the order path" in a["message"] for a in alerts(settings))


def test_a_slower_candidate_is_rejected_on_latency(repo, settings) -> None:
    sha = candidate(
        repo, "slow", "strategies/momentum.py", "def decide(f, p):\n", "def decide(f, p):\n    time.sleep(0.01)\n"
    )
    sha = branch(repo, "slow2", {"strategies/momentum.py": "import time\n" + _show(repo, sha)})
    did, _ = deploy(settings, sha, "slow")
    d = history(settings).get(did)
    assert d.state == "rejected"
    assert "latency_p50" in d.reason
    checks = {c["name"]: c["outcome"] for c in d.analysis["checks"]}
    assert checks["latency_p50"] == "fail" and checks["pnl_per_bar"] == "pass"
    assert any(a["kind"] == "deployment_rejected" and "latency" in a["message"] for a in alerts(settings))


def test_a_candidate_that_loses_money_on_the_same_bars_is_refused(repo, settings) -> None:
    churn = "    side = np.where(np.diff(f['fast'], prepend=np.nan) > 0, 1, -1)\n"
    churn += "    return np.ones(len(side)), side, np.full(len(side), 'churn')\n"
    crossing = "    side = np.where(up, 1, np.where(down, -1, 0))\n"
    strategy = patch_function(repo, "strategies/momentum.py", crossing, churn)
    technical = '"technical", "kind": "technical", "threshold": 0.55, "weight": 1.0, "enabled": '
    cascade = patch_function(repo, "strategies/cascade.py", technical + "True", technical + "False")
    sha = branch(repo, "churn", {"strategies/momentum.py": strategy, "strategies/cascade.py": cascade})
    did, _ = deploy(settings, sha, "churn")
    d = history(settings).get(did)
    assert d.state in ("rejected", "rolled_back")
    assert "pnl_per_bar" in d.reason or "drawdown" in d.reason
    assert history(settings).active().id == 1
    assert any(str(did) in a["message"] and a["kind"] in ("deployment_rejected", "rollback") for a in alerts(settings))


def test_a_fault_after_promotion_rolls_back_to_the_warm_slot(repo, settings) -> None:
    """Passes the shadow window, then crashes on a later bar: the lease goes back at once."""
    # Counted on ``sys``: the slot rebuilds its cascade (and reloads strategies) on promotion.
    bomb = "def decide(f, p):\n    import sys\n\n    sys.sorte_calls = getattr(sys, 'sorte_calls', 0) + 1\n"
    bomb += "    if sys.sorte_calls > 200:  # 4 symbols a step: 40 shadow steps pass, the watch does not\n"
    bomb += "        raise RuntimeError('time bomb')\n"
    strategy = patch_function(repo, "strategies/momentum.py", "def decide(f, p):\n", bomb)
    sha = branch(repo, "bomb", {"strategies/momentum.py": strategy})
    did, report = deploy(settings, sha, "bomb")
    h = history(settings)
    assert h.get(did).state == "rolled_back"
    assert "critical fault after promotion" in h.get(did).reason and "time bomb" in h.get(did).reason
    assert h.active().id == 1 and h.is_rejected(sha)
    [rollback] = report.rollbacks
    assert rollback.automatic and rollback.warm and rollback.to_deployment == 1
    assert [x.kind for x in report.handoffs] == ["promote", "rollback"]
    assert all(x.book_matches for x in report.handoffs)
    with Lease(commander_dir(settings.data_dir)) as lease:
        assert lease.current().holder == "blue" and lease.current().epoch == report.handoffs[0].epoch + 1
    assert any(a["kind"] == "rollback" and "time bomb" in a["message"] for a in alerts(settings))


def test_a_candidate_that_hangs_is_rejected_for_missed_heartbeats(repo, settings) -> None:
    hang = "def decide(f, p):\n    import sys\n    import time\n\n"
    hang += "    sys.sorte_calls = getattr(sys, 'sorte_calls', 0) + 1\n"
    hang += "    if sys.sorte_calls > 40:\n        time.sleep(600)  # blocks the slot's event loop: no heartbeat\n"
    sha = branch(
        repo,
        "hang",
        {"strategies/momentum.py": patch_function(repo, "strategies/momentum.py", "def decide(f, p):\n", hang)},
    )
    settings = settings.model_copy(
        update={"commander": settings.commander.model_copy(update={"heartbeat_timeout_s": 2.0})}
    )
    did, _ = deploy(settings, sha, "hang")
    d = history(settings).get(did)
    assert d.state == "rejected" and "missed heartbeats" in d.reason, d.reason
    assert history(settings).active().id == 1


def test_a_crashed_active_slot_is_restarted_and_misses_no_bar(settings) -> None:
    killed: list[int] = []

    def kill_once(c: Commander) -> bool:
        if c.tick == 20 and not killed:
            run = c.active_run()
            killed.append(run.client.process.proc.pid)
            os.kill(run.client.process.proc.pid, signal.SIGKILL)
        return False

    report = asyncio.run(Commander(settings).run(max_ticks=60, until=kill_once))
    assert killed and report.restarts == 1
    steps = WARM_UP + 60
    from sorte.runtime.ledger import Ledger

    ledger = Ledger(commander_dir(settings.data_dir) / "ledger.db", durable=False)
    try:
        assert [s for s, _, _ in ledger.equity_curve()] == list(range(steps)), "one committed step per bar"
        assert set(ledger.cursor().values()) == {steps - 1}
    finally:
        ledger.close()
    assert any(a["kind"] == "runtime_crash" for a in alerts(settings))


def _show(repo: Path, sha: str) -> str:
    from tests.project_repo import git

    return git(repo, "show", f"{sha}:strategies/momentum.py") + "\n"


def test_rollback_to_an_older_deployment_starts_it_again_in_the_idle_slot(repo, settings) -> None:
    from commander.operations import rollback

    def commented(name: str) -> str:
        text = (repo / "strategies" / "momentum.py").read_text() + f"\n# {name}: same behaviour\n"
        return branch(repo, name, {"strategies/momentum.py": text})

    b, _ = deploy(settings, commented("b"), "b")
    c, _ = deploy(settings, commented("c"), "c")
    h = history(settings)
    assert h.active().id == c and h.get(1).slot == h.get(c).slot == "blue"
    message = rollback(settings, to=1, reason="back to the first one")
    h = history(settings)
    active = h.active()
    assert active.commit == h.get(1).commit and active.slot == "green" and active.id not in (1, b, c)
    assert "rolled back to deployment" in message
    assert h.get(c).state == "rolled_back" and h.get(b).state in ("retired", "warm")
    assert any("rollback to 1" in e.reason for e in h.events(active.id))
    assert rollback(settings, to=active.id).startswith("nothing to do")


class _SkippingFeed:
    """The replay feed with one bar of one symbol missing, as an exchange outage leaves it."""

    def __init__(self, feed, symbol: str, seq: int) -> None:
        self.feed, self.symbol, self.seq = feed, symbol, seq

    async def next_batch(self):
        bars = await self.feed.next_batch()
        return None if bars is None else [b for b in bars if (b.symbol, b.seq) != (self.symbol, self.seq)]

    def __getattr__(self, name: str):
        return getattr(self.feed, name)


def test_a_gap_in_the_feed_is_reported_and_trading_goes_on(settings) -> None:
    commander = Commander(settings)
    commander.feed = _SkippingFeed(commander.feed, "ALPHA", WARM_UP + 10)
    report = asyncio.run(commander.run(max_ticks=30))
    assert report.feed_gaps == 1 and report.restarts == 0
    gaps = [a for a in alerts(settings) if a["kind"] == "bar_gap"]
    assert [a["message"] for a in gaps] == [f"bar sequence gap on ALPHA: seq {WARM_UP + 11} after {WARM_UP + 9}"]
    from sorte.runtime.ledger import Ledger

    ledger = Ledger(commander_dir(settings.data_dir) / "ledger.db", durable=False)
    try:
        assert ledger.cursor()["ALPHA"] == WARM_UP + 29
    finally:
        ledger.close()
