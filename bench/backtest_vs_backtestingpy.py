"""Sorte's backtester against backtesting.py on the same 10/20 SMA crossover.

    .venv/bin/python bench/backtest_vs_backtestingpy.py [--rounds R] [--block K]

Both engines run in this one process on backtesting.py's bundled GOOG (daily) and EURUSD
(hourly) series. Each engine is timed in blocks (a warm-up run, then K timed runs) and the
blocks alternate between the engines for R rounds, so that a drift in machine load hits
both alike; a full garbage collection before each block keeps one engine's garbage off
the other's clock. Times are medians over all timed runs; the speed ratio is the median
over the rounds of each round's ratio (backtesting.py's median time / Sorte's), which
pairs runs made under the same load. Each timed run is a whole backtest: indicators, the
simulation and the final statistics.

- Sorte: ``run_backtest`` with a one-stage cascade around ``strategies/momentum.py``
  (fast 10, slow 20, no stop loss / take profit), frictionless broker, shorts allowed,
  whole equity per position. The cascade object is built before the clock starts (fresh
  for every run, like backtesting.py's Strategy class, which is defined once); building it
  is timed separately and reported too.
- backtesting.py: ``Backtest(data, SmaCross).run()`` with its SmaCross logic (on a cross:
  close the position, then buy or sell), zero commission. Its indicators are
  ``sorte.indicators.sma``: pandas' rolling mean differs from Sorte's window-exact SMA in
  the last bits, which flips near-tie crosses, so both engines get identical SMA values.

Trades must be the same: count, entry bar, exit bar and side, in order. A trade still open
at the end is compared as (entry bar, open, side): backtesting.py runs with
``finalize_trades=False`` and reports it among ``strategy.trades``, Sorte as a trade
without exit. The script exits 1 if any trade differs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import backtesting  # noqa: E402  (AGPL: benchmark-only dependency)
import backtesting.backtesting as bt_engine  # noqa: E402
import backtesting.test as bt_data  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402

from sorte import indicators  # noqa: E402
from sorte.config import BrokerSettings, RiskSettings  # noqa: E402
from sorte.runtime.backtest import run_backtest  # noqa: E402
from sorte.runtime.cascade import single_strategy_cascade  # noqa: E402
from sorte.runtime.data import validate_bars  # noqa: E402

STRATEGIES = REPO / "strategies"
RESULTS = REPO / "bench" / "results" / "backtest_vs_backtestingpy.json"
SERIES = ("GOOG", "EURUSD")
FAST, SLOW = 10, 20
CASH = 10_000.0
TARGET_RATIO = 10.0

BROKER = BrokerSettings(initial_cash=CASH, fee_bps=0, slippage_bps=0, allow_short=True)
RISK = RiskSettings(
    position_fraction=1, max_position_fraction=1, max_loss_per_trade=1, max_drawdown=1, max_gross_exposure=2
)
PARAMS = {"fast": FAST, "slow": SLOW, "stop_loss": 0.0, "take_profit": 0.0}


class SmaCross(Strategy):
    """backtesting.py's SmaCross example (10/20), on Sorte's SMA values."""

    fast = FAST
    slow = SLOW

    def init(self):
        self.sma1 = self.I(indicators.sma, self.data.Close, self.fast)
        self.sma2 = self.I(indicators.sma, self.data.Close, self.slow)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


def sorte_frame(name: str) -> pd.DataFrame:
    raw = getattr(bt_data, name)
    return validate_bars(raw.reset_index().rename(columns={raw.index.name or "index": "time"}), name)


def run_sorte(name: str, frame: pd.DataFrame, cascade):
    return run_backtest(cascade, {name: frame}, BROKER, RISK)


def run_bt(raw: pd.DataFrame):
    return Backtest(raw, SmaCross, cash=CASH, commission=0.0, finalize_trades=False).run()


def sorte_trades(result) -> list[tuple[int, int | None, str]]:
    return [(t.entry_seq, t.exit_seq, t.side) for t in result.trades]


def bt_trades(stats) -> list[tuple[int, int | None, str]]:
    strategy = stats._strategy
    closed = [(t.entry_bar, t.exit_bar, "BUY" if t.is_long else "SELL") for t in strategy.closed_trades]
    still_open = [(t.entry_bar, None, "BUY" if t.is_long else "SELL") for t in strategy.trades]
    return closed + still_open


def first_difference(a: list, b: list) -> dict | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return {"index": i, "sorte": x, "backtesting_py": y}
    if len(a) != len(b):
        return {"index": min(len(a), len(b)), "sorte_count": len(a), "backtesting_py_count": len(b)}
    return None


def new_cascade():
    return single_strategy_cascade("momentum", STRATEGIES, PARAMS)


def bench_series(name: str, rounds: int, block: int) -> dict:
    """Time both engines on one series: ``rounds`` rounds, each one warm-up run and then
    ``block`` timed runs of Sorte, then the same for backtesting.py. Each engine is timed
    in its own steady state (a run right after the other engine's would start with caches
    full of the other's data) while alternating rounds spread any drift in machine load
    over both."""
    raw = getattr(bt_data, name)
    frame = sorte_frame(name)
    bars = len(frame)
    t_sorte, t_bt, t_build, round_ratios = [], [], [], []
    cpu_sorte, cpu_bt = [], []
    for _ in range(rounds):
        cascades = []  # a fresh cascade per run, built before the block (timed on its own)
        for _ in range(block + 1):
            t0 = time.perf_counter()
            cascades.append(new_cascade())
            t_build.append(time.perf_counter() - t0)
        gc.collect()  # the other engine's garbage is not collected on this engine's clock
        run_sorte(name, frame, cascades.pop())  # warm-up
        for cascade in cascades:
            c0, t0 = time.process_time(), time.perf_counter()
            result = run_sorte(name, frame, cascade)
            t_sorte.append(time.perf_counter() - t0)
            cpu_sorte.append(time.process_time() - c0)
        gc.collect()
        run_bt(raw)  # warm-up
        for _ in range(block):
            c0, t0 = time.process_time(), time.perf_counter()
            stats = run_bt(raw)
            t_bt.append(time.perf_counter() - t0)
            cpu_bt.append(time.process_time() - c0)
        round_ratios.append(statistics.median(t_bt[-block:]) / statistics.median(t_sorte[-block:]))
    ours, theirs = sorte_trades(result), bt_trades(stats)
    diff = first_difference(ours, theirs)
    s_med, b_med, c_med = statistics.median(t_sorte), statistics.median(t_bt), statistics.median(t_build)
    paired = statistics.median(round_ratios)
    return {
        "series": name,
        "bars": bars,
        "rounds": rounds,
        "runs_per_round": block,
        "timed_runs_per_engine": rounds * block,
        "sorte_ms_median": round(1e3 * s_med, 3),
        "backtesting_py_ms_median": round(1e3 * b_med, 3),
        "sorte_bars_per_s": round(bars / s_med),
        "backtesting_py_bars_per_s": round(bars / b_med),
        "speed_ratio": round(paired, 2),
        "speed_ratio_per_round": [round(r, 2) for r in round_ratios],
        "speed_ratio_of_medians": round(b_med / s_med, 2),
        "speed_ratio_cpu_time": round(statistics.median(cpu_bt) / statistics.median(cpu_sorte), 2),
        "sorte_cascade_build_ms_median": round(1e3 * c_med, 3),
        "speed_ratio_incl_cascade_build": round(paired * s_med / (s_med + c_med), 2),
        "sorte_ms_samples": [round(1e3 * t, 3) for t in t_sorte],
        "backtesting_py_ms_samples": [round(1e3 * t, 3) for t in t_bt],
        "sorte_trades": len(ours),
        "backtesting_py_trades": len(theirs),
        "open_at_end": {"sorte": sum(t[1] is None for t in ours), "backtesting_py": sum(t[1] is None for t in theirs)},
        "trades_match": diff is None,
        "first_difference": diff,
        "sorte_final_equity": result.metrics.final_equity,
        "backtesting_py_final_equity": round(float(stats["Equity Final [$]"]), 2),
    }


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "backtesting_py": backtesting.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rounds",
        type=int,
        default=9,
        help="rounds per series; in each, every engine does a warm-up run and --block timed runs",
    )
    ap.add_argument("--block", type=int, default=4, help="timed runs per engine per round, after a warm-up run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore", message="Some trades remain open")  # expected: compared as open
    bt_engine._tqdm = lambda seq, **_: seq  # no progress bar in the timed loop, whether tqdm is installed or not

    rows = [bench_series(name, args.rounds, args.block) for name in SERIES]
    ok = all(r["trades_match"] for r in rows)
    met = all(r["speed_ratio"] >= TARGET_RATIO for r in rows)

    header = f"{'series':8} {'bars':>5} {'sorte bars/s':>13} {'bt.py bars/s':>13} {'ratio':>7} {'range':>12} "
    header += f"{'sorte ms':>9} {'bt.py ms':>9} {'trades':>9} {'match':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        trades = f"{r['sorte_trades']}/{r['backtesting_py_trades']}"
        spread = f"{min(r['speed_ratio_per_round']):.1f}-{max(r['speed_ratio_per_round']):.1f}x"
        print(
            f"{r['series']:8} {r['bars']:>5} {r['sorte_bars_per_s']:>13,} {r['backtesting_py_bars_per_s']:>13,} "
            f"{r['speed_ratio']:>6.1f}x {spread:>12} {r['sorte_ms_median']:>9.2f} "
            f"{r['backtesting_py_ms_median']:>9.2f} {trades:>9} {'yes' if r['trades_match'] else 'NO':>6}"
        )
    print(
        f"times and bars/s: medians of {args.rounds * args.block} timed runs per engine ({args.rounds} rounds of "
        f"1 warm-up + {args.block}); ratio: median over rounds of (backtesting.py median / Sorte median) in the "
        "round, range: lowest and highest round; trades: Sorte/backtesting.py, including the one open at the end"
    )
    for r in rows:
        print(
            f"{r['series']}: ratio of the overall medians {r['speed_ratio_of_medians']:.1f}x, of CPU times "
            f"{r['speed_ratio_cpu_time']:.1f}x; Sorte cascade build {r['sorte_cascade_build_ms_median']:.2f} ms "
            f"(ratio including it: {r['speed_ratio_incl_cascade_build']:.1f}x)"
        )
        if not r["trades_match"]:
            print(f"{r['series']}: TRADES DIFFER, first difference: {r['first_difference']}")
    print(f"target >= {TARGET_RATIO:g}x on every series: {'met' if met else 'NOT met'}")

    report = {
        "benchmark": "backtest_vs_backtestingpy",
        "command": ".venv/bin/python bench/backtest_vs_backtestingpy.py",
        "strategy": f"SMA {FAST}/{SLOW} crossover, long/short, no stops, no fees",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "target_ratio": TARGET_RATIO,
        "target_met": met,
        "trades_match": ok,
        "series": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
