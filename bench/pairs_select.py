"""Pair selection over 2,000 tickers.

    .venv/bin/python bench/pairs_select.py [--tickers 2000] [--runs 50] [--seed 7] [--no-exchange] [--out PATH]

1. The ranking: ``sorte.market.pairs.select_pairs`` on ``--tickers`` seeded synthetic ccxt
   tickers (3 in 4 quoted in USDT; log-normal volumes and prices, 24 h ranges of 0.2 to 60 %,
   log-normal spreads; 1 in 100 malformed: a None volume, price or high/low) under the default
   ``market.pairs`` settings (top 20; volume >= 1M USDT, spread <= 0.5 %, range 1 to 50 %, the
   stablecoin blacklist). Median of ``--runs`` runs, interleaved with the **anchor**: the same
   tickers sorted by quote volume in plain Python (``sorted(..., key=...)[:20]``, freqtrade's
   VolumePairList at its barest), so the figure that travels between machines is the ratio.
   Also timed the same way: with ``min_history_bars`` (a dict lookup as the count), with the
   volatility from 60 cached candles (in memory), and saving the selection as JSON.
2. Unless ``--no-exchange``: ``PairSelector.refresh()`` end to end against the local fake Binance
   of the tests through the real ccxt client (markets, ``fetch_tickers``, the ranking, the
   file), each run with a new selector as a commander restart would have, rate limiting on.

Target (issue 17): pair selection over 2,000 tickers < 1 s. Writes ``bench/results/pairs_select.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sorte.config import ExchangeSettings, MarketSettings, PairsSettings, Settings  # noqa: E402
from sorte.market.pairs import PairSelector, select_pairs, write_selection  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pairs_select.json"
QUOTES = ["USDT", "USDT", "USDT", "BTC"]


def synthetic(n: int, seed: int) -> dict[str, dict[str, Any]]:
    """``n`` ccxt unified tickers keyed by symbol, as ``fetch_tickers`` answers."""
    rng = random.Random(seed)
    tickers: dict[str, dict[str, Any]] = {}
    for i in range(n):
        symbol = f"C{i:04d}/{QUOTES[i % len(QUOTES)]}"
        price = math.exp(rng.gauss(0, 3))
        low = price / (1 + rng.uniform(0.001, 0.3))
        high = low * (1 + rng.uniform(0.002, 0.6))
        spread = math.exp(rng.gauss(-2.5, 1.2)) / 100  # median 0.08 %
        volume = math.exp(rng.gauss(14, 2.5))  # median 1.2M
        t: dict[str, Any] = {
            "symbol": symbol,
            "last": price,
            "close": price,
            "ask": price,
            "bid": price * (1 - spread),
            "high": high,
            "low": low,
            "quoteVolume": volume,
            "baseVolume": volume / price,
            "percentage": rng.gauss(0, 5),
        }
        if rng.random() < 0.01:
            t[rng.choice(["quoteVolume", "last", "high"])] = None
            if t["quoteVolume"] is None:
                t["baseVolume"] = None
        tickers[symbol] = t
    return tickers


def candle_windows(tickers: dict[str, dict[str, Any]], bars: int, seed: int) -> dict[str, list[list[float]]]:
    rng = random.Random(seed)
    windows = {}
    for symbol, t in tickers.items():
        price = t["close"] or 1.0
        rows = []
        for i in range(bars):
            price *= math.exp(rng.gauss(0, 0.004))
            rows.append([i * 60_000.0, price, price * 1.002, price * 0.998, price, 1.0])
        windows[symbol] = rows
    return windows


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(runs: int, cases: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Each case once per round, in turn, so that a busy minute slows them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: imports, regex compilation, caches
        fn()
    for _ in range(runs):
        for name, fn in cases.items():
            samples[name].append(timed(fn))
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
        "runs": len(ms),
    }


def ranking(n: int, runs: int, seed: int) -> dict[str, Any]:
    tickers = synthetic(n, seed)
    defaults = PairsSettings()
    history_counts = {symbol: 10_000 if i % 10 else 50 for i, symbol in enumerate(tickers)}
    with_history = PairsSettings(min_history_bars=500)
    windows = candle_windows(tickers, 60, seed)
    with_candles = PairsSettings(volatility_lookback_bars=60, min_volatility_pct=0.5)
    values = list(tickers.values())
    tmp = Path(tempfile.mkdtemp())
    selection = select_pairs(tickers, defaults)

    cases: dict[str, Callable[[], Any]] = {
        "anchor_sort_by_volume": lambda: sorted(values, key=lambda t: t["quoteVolume"] or 0.0, reverse=True)[:20],
        "select_pairs": lambda: select_pairs(tickers, defaults),
        "select_pairs_min_history": lambda: select_pairs(tickers, with_history, history=history_counts.__getitem__),
        "select_pairs_candle_volatility": lambda: select_pairs(
            tickers, with_candles, candles=lambda symbol, k: windows[symbol][-k:]
        ),
        "write_selection_json": lambda: write_selection(tmp / "pairs.json", selection),
    }
    samples = interleaved(runs, cases)
    anchor = statistics.median(samples["anchor_sort_by_volume"])
    out: dict[str, Any] = {name: summary(s) for name, s in samples.items()}
    for name in cases:
        if name != "anchor_sort_by_volume":
            out[name]["over_anchor"] = round(statistics.median(samples[name]) / anchor, 1)
    out["selection"] = {
        "tickers": selection.tickers,
        "eligible": selection.eligible,
        "selected": selection.symbols,
        "rejected_by": selection.rejected_by(),
        "file_bytes": (tmp / "pairs.json").stat().st_size,
    }
    return out


def through_exchange(n: int, runs: int, seed: int) -> dict[str, Any]:
    from fake_exchange import FakeBinance

    rng = random.Random(seed)
    fake = FakeBinance(("BTC/USDT", "ETH/USDT")).start()
    specs = {}
    for symbol, t in synthetic(n - 2, seed).items():
        if None in (t["last"], t["high"], t["quoteVolume"]):
            continue
        specs[symbol] = {
            "last": t["last"],
            "high": t["high"],
            "low": t["low"],
            "quote_volume": t["quoteVolume"],
            "spread_pct": rng.uniform(0.01, 1.0),
        }
    fake.add_symbols(specs)
    tmp = Path(tempfile.mkdtemp())
    settings = Settings(
        data_dir=tmp,
        exchange=ExchangeSettings(base_url=fake.url),
        market=MarketSettings(pairs=PairsSettings()),
    )

    async def once() -> tuple[float, float, int]:
        selector = PairSelector(settings, path=tmp / "pairs.json")
        selector.last = None
        started = time.perf_counter()
        try:
            selection = await selector.refresh()
        finally:
            await selector.close()
        return time.perf_counter() - started, selection.took_s, selection.tickers

    try:
        results = [asyncio.run(once()) for _ in range(runs)]
    finally:
        fake.stop()
    return {
        "refresh": summary([r[0] for r in results]),
        "ranking_inside_refresh": summary([r[1] for r in results]),
        "tickers": results[0][2],
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    import ccxt

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "ccxt": ccxt.__version__,
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-exchange", action="store_true", help="Only the ranking, not the fake exchange")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "tickers": args.tickers,
        "runs": args.runs,
        "seed": args.seed,
        "target": "pair selection over 2,000 tickers < 1 s",
        "ranking": ranking(args.tickers, args.runs, args.seed),
    }
    if not args.no_exchange:
        result["exchange"] = through_exchange(args.tickers, 5, args.seed)
    r = result["ranking"]
    print(f"{args.tickers} tickers, median of {args.runs} runs ({result['machine']['cpu']}, {os.cpu_count()} cores)")
    print(f"{'case':<34}{'median':>11}{'p90':>11}{'x anchor':>10}")
    for name in ("anchor_sort_by_volume", "select_pairs", "select_pairs_min_history", "select_pairs_candle_volatility"):
        row = r[name]
        ratio = f"{row['over_anchor']:.1f}" if "over_anchor" in row else "1"
        print(f"{name:<34}{row['median_ms']:>8.2f} ms{row['p90_ms']:>8.2f} ms{ratio:>10}")
    print(f"{'write_selection_json':<34}{r['write_selection_json']['median_ms']:>8.2f} ms")
    print(f"selection: {r['selection']['eligible']} eligible, rejected {r['selection']['rejected_by']}")
    if "exchange" in result:
        e = result["exchange"]
        print(
            f"PairSelector.refresh() on the fake Binance ({e['tickers']} tickers, ccxt): median "
            f"{e['refresh']['median_ms']:.0f} ms, of which ranking {e['ranking_inside_refresh']['median_ms']:.1f} ms"
        )
    met = r["select_pairs"]["median_ms"] < 1000
    print(f"target < 1 s: {'met' if met else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
