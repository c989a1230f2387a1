"""Reconciliation on hand-over with 50 open orders.

    .venv/bin/python bench/reconcile.py [--symbols 50] [--open 50] [--unbooked 10] [--held 20]
                                        [--runs 20] [--latency-ms 0,50] [--out PATH]

The commander's ``OrderGateway`` against the local fake Binance of the tests, through the real
ccxt client with its rate limiter on (a 60 s window of Binance's weight budget). The account:
``--symbols`` USDT pairs; through the gateway, from a ledger written first as the active slot
does, ``--held`` market buys filled and booked (positions and cash in the ledger), ``--unbooked``
market buys filled at the exchange but not booked yet (open in the ledger), and ``--open``
resting limit buys far below the price. Each run is a hand-over: a new epoch, then
``reconcile`` (open orders, the fills of the ledger's open orders, balances against the
baseline), which must pass. Timed per run, for each ``--latency-ms`` (added to every REST
answer of the fake: a network's round trip). The gateway's rate limiter keeps Binance's budget
of 6,000 weight a minute; hand-overs come minutes apart, so each run starts with the minute's
budget unused (the limiter's window is cleared), and the weight a reconciliation spends is
reported (twenty back to back would exhaust the budget and wait for the next minute).

**Anchor**, in the same run: one ``fetch_balance`` call on the same client (the cheapest
authenticated round trip), so the figure that travels between machines is the ratio.
Also timed: the same reconciliation with the quote balance off by 1 % (a mismatch: the
fills of every symbol are read to name the cause).

Target (issue 17): reconciliation on hand-over < 2 s with 50 open orders.
Writes ``bench/results/reconcile.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_exchange import API_KEY, API_SECRET, FakeBinance  # noqa: E402

from commander.alerts import Alerts  # noqa: E402
from commander.gateway import OrderGateway  # noqa: E402
from commander.lease import Lease  # noqa: E402
from commander.order_journal import OrderJournal  # noqa: E402
from commander.routed_broker import intent  # noqa: E402
from sorte import paths  # noqa: E402
from sorte.config import Settings  # noqa: E402
from sorte.runtime.ledger import Ledger  # noqa: E402
from sorte.runtime.values import BUY, Order, Position  # noqa: E402

RESULTS = REPO / "bench" / "results" / "reconcile.json"


class Account:
    def __init__(self, root: Path, fake: FakeBinance, symbols: list[str]) -> None:
        self.settings = Settings(
            data_dir=root,
            runtime={"mode": "live", "live_trading": True, "feed": "ccxt", "symbols": symbols},
            exchange={"base_url": fake.url, "api_key": API_KEY, "api_secret": API_SECRET},
            broker={"initial_cash": 500_000},
            market={"request_timeout_s": 10.0},
        )
        cdir = paths.commander_dir(root)
        self.lease = Lease(cdir)
        self.epoch = self.lease.acquire("blue", None).epoch
        self.ledger = Ledger(paths.commander_ledger(cdir))
        journal = OrderJournal(paths.account_dir(root))
        self.gateway = OrderGateway(self.settings, self.lease, Alerts(cdir), journal, lambda: symbols)
        self.step, self.cash = 0, 500_000.0

    def commit(self, orders: list[Order], settled: list[Order], positions: dict[str, Position]) -> None:
        account = {"cash": self.cash, "realized_pnl": 0.0, "fees": 0.0}
        self.ledger.commit_step(self.step, 0.0, orders, [], positions, account, self.cash, {}, settled)
        self.step += 1

    async def place(self, orders: list[Order]) -> None:
        intents = [intent("place", o) for o in orders]
        await self.gateway.place("blue", intents, self.ledger)

    async def hand_over(self) -> float:
        slot = "green" if self.lease.current().holder == "blue" else "blue"
        self.epoch = self.lease.transfer(self.lease.current().holder or "blue", slot, self.epoch).epoch
        t0 = time.perf_counter()
        self.gateway.hand_to(slot, self.epoch, self.ledger)
        result = await self.gateway.ensure_reconciled(self.ledger)
        seconds = time.perf_counter() - t0
        assert result is not None
        if not result.ok:
            raise SystemExit(f"reconciliation failed: {result.differences}")
        return seconds


def order(epoch: int, seq: int, symbol: str, qty: float, kind: str = "market", limit: float = 0.0) -> Order:
    return Order(
        f"e{epoch}:{seq}:{symbol}:bench:open", symbol, BUY, qty, kind, "open", "bench", seq, 0.0, limit_price=limit
    )


async def build(acc: Account, fake: FakeBinance, symbols: list[str], held: int, unbooked: int, resting: int) -> None:
    """The account as the description says, each order committed before it is sent."""
    first = await acc.gateway.reconcile(acc.epoch, acc.ledger)  # the baseline
    assert first.ok, first.differences
    acc.gateway.hand_to("blue", acc.epoch, acc.ledger)
    buys = [order(acc.epoch, 1, s, 1.0) for s in symbols[:held]]
    acc.commit(buys, [], {})
    await acc.place(buys)
    reports = {r.client_order_id: r for r in await acc.gateway.reports(acc.ledger)}
    positions = {}
    for o in buys:  # the slot books the fills
        r = reports[o.client_order_id]
        assert r.average is not None
        acc.cash -= r.filled * r.average + (r.fee or 0.0)
        positions[o.symbol] = Position(o.symbol, r.filled, r.average, 1, 0.0, "bench")
        o.status = "filled"
    later = [order(acc.epoch, 2, s, 1.0) for s in symbols[held : held + unbooked]]
    rest = [
        order(acc.epoch, 3, s, 1.0, "limit", round(fake.last_price(s.replace("/", "")) / 2, 2))
        for s in symbols[:resting]
    ]
    acc.commit(later + rest, buys, positions)
    await acc.place(later + rest)


def measure(args: argparse.Namespace, latency_s: float) -> dict[str, Any]:
    """One account on a fresh exchange."""
    symbols = [f"C{i:03d}/USDT" for i in range(args.symbols)]
    fake = FakeBinance(tuple(symbols)).start()
    fake.balances["USDT"] = 1_000_000.0
    try:
        return asyncio.run(measure_on(fake, symbols, args, latency_s))
    finally:
        fake.stop()


async def measure_on(
    fake: FakeBinance, symbols: list[str], args: argparse.Namespace, latency_s: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sorte-bench-reconcile-") as tmp:
        acc = Account(Path(tmp), fake, symbols)
        fake.latency_s = 0.0
        await build(acc, fake, symbols, args.held, args.unbooked, args.open)
        fake.latency_s = latency_s
        runs, anchors, costs = [], [], []
        limiter = acc.gateway.exchange.throttler  # its ``timestamps``: the last minute's calls
        for _ in range(args.runs):
            limiter.timestamps = []  # hand-overs come minutes apart: each starts with the budget unused
            t0 = time.perf_counter()
            await acc.gateway.exchange.fetch_balance()
            anchors.append(time.perf_counter() - t0)
            limiter.timestamps = []
            runs.append(await acc.hand_over())
            costs.append(sum(t["cost"] for t in limiter.timestamps))
        open_at_exchange = len(await acc.gateway.exchange.fetch_open_orders())
        limiter.timestamps = []
        fake.balances["USDT"] += 10_000.0  # a mismatch (1 %): every symbol's fills are read to name it
        holder = acc.lease.current().holder or "blue"
        acc.epoch = acc.lease.transfer(holder, "green" if holder == "blue" else "blue", acc.epoch).epoch
        t0 = time.perf_counter()
        bad = await acc.gateway.reconcile(acc.epoch, acc.ledger)
        mismatch_s = time.perf_counter() - t0
        fake.balances["USDT"] -= 10_000.0
        assert not bad.ok
        await acc.gateway.close()
        acc.ledger.close()
        acc.lease.close()
    p50, p99 = statistics.median(runs), sorted(runs)[max(0, round(0.99 * len(runs)) - 1)]
    anchor = statistics.median(anchors)
    return {
        "latency_ms": latency_s * 1000,
        "open_orders": open_at_exchange,
        "reconcile_p50_s": round(p50, 4),
        "reconcile_max_s": round(max(runs), 4),
        "reconcile_p99_s": round(p99, 4),
        "anchor_fetch_balance_s": round(anchor, 4),
        "ratio_p50_to_anchor": round(p50 / anchor, 2),
        "weight_per_reconcile": round(5 * statistics.median(costs), 1),  # Binance weight (ccxt cost x 5)
        "mismatch_s": round(mismatch_s, 4),
        "mismatch_differences": len(bad.differences),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--open", type=int, default=50)
    parser.add_argument("--unbooked", type=int, default=10)
    parser.add_argument("--held", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.held + args.unbooked > args.symbols or args.open > args.symbols:
        parser.error("--held + --unbooked and --open must each be at most --symbols")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows = [measure(args, float(ms) / 1000) for ms in args.latency_ms.split(",")]
    for r in rows:
        print(
            f"RTT {r['latency_ms']:>5.0f} ms: {r['open_orders']} open orders,"
            f" reconcile p50 {r['reconcile_p50_s']:.3f} s"
            f" (max {r['reconcile_max_s']:.3f} s) = {r['ratio_p50_to_anchor']}x one fetch_balance;"
            f" a mismatch named in {r['mismatch_s']:.3f} s"
        )
    out = {
        "benchmark": "reconcile",
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "target_s": 2.0,
        "rows": rows,
        "pass": all(r["reconcile_max_s"] < 2.0 for r in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"target < 2 s: {'PASS' if out['pass'] else 'FAIL'}; wrote {args.out}")
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
