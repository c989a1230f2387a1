"""Decision latency per symbol per bar of a 3-stage cascade on 100 symbols, streaming.

    .venv/bin/python bench/decision_latency.py [--symbols 100] [--bars 500] [--seed 7]

The real trading runtime (``sorte.runtime.engine.Runtime``) replays the bundled demo market
(``sorte.runtime.demo.generate``) through a ``ReplayFeed`` on a simulated clock with the
paper broker, as ``sorte run`` does, with no pause between batches. For every bar of every
symbol the runtime keeps a trailing window and calls ``Cascade.evaluate_last`` on it; the
time of that call is what it reports as ``sorte_decision_latency_seconds``. This script
records each of those observations (the runtime's own measurement) and also times the
whole ``_analyze`` step, which adds building the window's arrays from the symbol's buffer.

Cascade (min confidence 0.6): momentum (threshold 0.5) -> technical (0.5) -> breakout
(0.0: it scores every bar, and discards a bar only when it names the opposite side).
Bars before a symbol's window is full are reported apart (warm-up).

The replay runs twice in the same process: the anchor with the strategies imported in process
(how the runtime worked before privilege separation), then as Sorte runs now, with the strategy
code in a confined worker process (``sorte.runtime.strategy_host``) asked once per step for
every symbol. The runtime's metric then includes each symbol's share of that round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sorte.config import BrokerSettings, RiskSettings  # noqa: E402
from sorte.logging import setup_logging  # noqa: E402
from sorte.runtime import demo  # noqa: E402
from sorte.runtime.broker import PaperBroker  # noqa: E402
from sorte.runtime.cascade import build_cascade, parse_cascade  # noqa: E402
from sorte.runtime.clock import SimClock  # noqa: E402
from sorte.runtime.control import RuntimeControl  # noqa: E402
from sorte.runtime.engine import Runtime  # noqa: E402
from sorte.runtime.executor import Executor  # noqa: E402
from sorte.runtime.feed import ReplayFeed  # noqa: E402

STRATEGIES = REPO / "strategies"
RESULTS = REPO / "bench" / "results" / "decision_latency.json"
TARGET_P99_MS = 1.0
CASCADE = {
    "min_confidence": 0.6,
    "stages": [
        {"name": "momentum", "kind": "strategy", "strategy": "momentum", "threshold": 0.5},
        {"name": "technical", "kind": "technical", "threshold": 0.5},
        {"name": "breakout", "kind": "strategy", "strategy": "breakout", "threshold": 0.0},
    ],
}


class _Recorder:
    """Stands in for the runtime's latency histogram: keeps every observation, then passes
    it on to the histogram."""

    def __init__(self, histogram) -> None:
        self.histogram = histogram
        self.values: list[float] = []

    def observe(self, seconds: float) -> None:
        self.values.append(seconds)
        self.histogram.observe(seconds)


def build_runtime(n_symbols: int, n_bars: int, seed: int, host=None):
    frames = demo.generate(n_symbols, n_bars, seed)
    cascade = build_cascade(parse_cascade(CASCADE, "bench"), STRATEGIES, host=host)
    clock = SimClock()
    broker_settings = BrokerSettings(allow_short=True)
    broker = PaperBroker(broker_settings)
    executor = Executor(broker, RiskSettings(), broker_settings)
    runtime = Runtime(cascade, ReplayFeed(frames, clock), broker, executor, clock, RuntimeControl())
    return runtime, cascade


def run(n_symbols: int, n_bars: int, seed: int, host=None) -> dict:
    runtime, cascade = build_runtime(n_symbols, n_bars, seed, host)
    recorder = _Recorder(runtime.metrics.decision_latency)
    runtime.metrics.decision_latency = recorder
    seqs: list[int] = []
    analyze_s: list[float] = []
    inner = runtime._analyze

    async def timed_analyze(bar, window, prefetch_s=0.0):
        seqs.append(bar.seq)
        t0 = time.perf_counter()
        decision = await inner(bar, window, prefetch_s)
        analyze_s.append(time.perf_counter() - t0 + prefetch_s)
        return decision

    runtime._analyze = timed_analyze
    t0 = time.perf_counter()
    summary = asyncio.run(runtime.run())
    wall = time.perf_counter() - t0

    lat = np.asarray(recorder.values)
    full = np.asarray(analyze_s)
    seq = np.asarray(seqs)
    steady = seq >= cascade.window - 1  # the window is full from here on

    def stats(x: np.ndarray) -> dict:
        if not len(x):
            return {"n": 0}
        p50, p90, p99, p999 = np.percentile(x, [50, 90, 99, 99.9]) * 1e3
        return {
            "n": int(len(x)),
            "p50_ms": round(float(p50), 4),
            "p90_ms": round(float(p90), 4),
            "p99_ms": round(float(p99), 4),
            "p99_9_ms": round(float(p999), 4),
            "max_ms": round(float(x.max() * 1e3), 4),
            "mean_ms": round(float(x.mean() * 1e3), 4),
        }

    evaluated = {name: st.evaluated for name, st in cascade.stats.items()}
    return {
        "symbols": n_symbols,
        "bars_per_symbol": n_bars,
        "seed": seed,
        "cascade": CASCADE,
        "window_bars": cascade.window,
        "evaluate_last": stats(lat[steady]),
        "evaluate_last_warmup": stats(lat[~steady]),
        "analyze_incl_window": stats(full[steady]),
        "stage_evaluations": evaluated,
        "stage_pass_rates": {name: round(st.pass_rate, 4) for name, st in cascade.stats.items()},
        "stage_mean_latency_ms": {name: round(st.mean_latency_s * 1e3, 4) for name, st in cascade.stats.items()},
        "decisions": summary.decisions,
        "orders": summary.orders,
        "steps": summary.steps,
        "symbol_bars": summary.bars,
        "wall_s": round(wall, 3),
        "symbol_bars_per_s": round(summary.bars / wall),
    }


def machine() -> dict:
    cpu, mem_gib = "unknown", None
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        mem_gib = round(kib / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def _print(r: dict) -> None:
    e, a, w = r["evaluate_last"], r["analyze_incl_window"], r["evaluate_last_warmup"]
    print(f"{'per symbol per bar':34} {'n':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, s in (
        ("evaluate_last (runtime's metric)", e),
        ("_analyze incl. window arrays", a),
        ("evaluate_last, warm-up bars", w),
    ):
        print(f"{label:34} {s['n']:>7} {s['p50_ms']:>8.3f} {s['p90_ms']:>8.3f} {s['p99_ms']:>8.3f} {s['max_ms']:>8.3f}")
    print(f"stages evaluated: {r['stage_evaluations']}; mean ms per stage: {r['stage_mean_latency_ms']}")
    print(f"decisions {r['decisions']}, orders {r['orders']}")
    print(f"whole replay: {r['symbol_bars']} symbol-bars in {r['wall_s']} s ({r['symbol_bars_per_s']:,} per s)")


def main(argv: list[str] | None = None) -> int:
    from sorte.runtime.strategy_host import StrategyHost

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--bars", type=int, default=500, help="bars per symbol")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    setup_logging("info")

    anchor = run(args.symbols, args.bars, args.seed)
    with StrategyHost(STRATEGIES) as host:
        r = run(args.symbols, args.bars, args.seed, host)
        r["isolation_warnings"] = host.warnings
    same = (anchor["decisions"], anchor["orders"]) == (r["decisions"], r["orders"])
    met = r["evaluate_last"]["p99_ms"] < TARGET_P99_MS
    ratio = r["evaluate_last"]["p99_ms"] / anchor["evaluate_last"]["p99_ms"]
    print(f"{r['symbols']} symbols x {r['bars_per_symbol']} bars, 3-stage cascade, window {r['window_bars']} bars")
    print("\nanchor: strategies imported in process")
    _print(anchor)
    print("\nSorte: strategies in the confined worker, one round trip per step")
    _print(r)
    print(f"\np99 ratio worker / in process: {ratio:.2f}x; same decisions and orders: {same}")
    print(f"target p99 < {TARGET_P99_MS:g} ms with the worker: {'met' if met else 'NOT met'}")

    report = {
        "benchmark": "decision_latency",
        "command": ".venv/bin/python bench/decision_latency.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": met,
        "p99_ratio_worker_over_in_process": round(ratio, 3),
        "same_decisions_and_orders": same,
        "in_process_anchor": anchor,
        **r,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
