"""LLM response cache and embedded-model latency.

    .venv/bin/python bench/llm_cache.py [--entries 20000] [--lookups 200000] [--no-model]

1. Cache hits, both levels: ``ResponseCache.get`` on keys stored before (answers of ~200
   bytes, SHA-256 keys as the client makes them). Memory level: the LRU holds every key.
   Disk level: a fresh cache object over the same SQLite file with the memory level
   disabled, so every lookup reads the disk store. Latency percentiles per lookup
   (``perf_counter`` around each call) and sustained lookups per second (a timed loop of
   lookups, one thread, like the runtime's event loop).
2. A cached answer as a stage gets it: ``LLM.ask`` end to end on 1,000 distinct prompts
   already answered (key hashing, the memory hit, the pydantic validation of the answer,
   the call's log line), with a scripted backend that is never reached; logged as
   ``sorte up`` logs (JSON file) and with the per-call line filtered out, next to the bare
   memory hit.
3. The embedded model (SmolLM2-135M-Instruct through llama-cpp-python) on a typical stage
   call (the ``technical`` prompt with a market summary, JSON-schema output): cold (a new
   process: model load + first answer) and warm (later answers, cache bypassed).

Targets (issue 3): memory hit p99 < 50 us, disk hit p99 < 1 ms, > 100,000 memory hits/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sorte.llm.cache import ResponseCache, cache_key  # noqa: E402

RESULTS = REPO / "bench" / "results" / "llm_cache.json"
ANSWER = json.dumps({"score": 0.734, "side": "BUY", "reason": "RSI recovering from oversold, MACD turning up" * 2})


def keys(n: int) -> list[str]:
    msgs = [{"role": "user", "content": "Technical analysis of SYM for a proposed BUY. RSI 31.2"}]
    return [cache_key("llamacpp", "SmolLM2", msgs, {"i": i}, {"type": "object"}) for i in range(n)]


def percentiles(samples: list[float]) -> dict[str, float]:
    us = np.array(samples) * 1e6
    return {
        "p50_us": round(float(np.percentile(us, 50)), 2),
        "p99_us": round(float(np.percentile(us, 99)), 2),
        "max_us": round(float(us.max()), 2),
        "n": len(us),
    }


def measure(cache: ResponseCache, ks: list[str], lookups: int, rng: np.random.Generator) -> dict:
    order = rng.integers(0, len(ks), lookups)
    picks = [ks[i] for i in order]
    lat = []
    get, clock = cache.get, time.perf_counter
    for k in picks[: min(lookups, 50_000)]:
        t0 = clock()
        hit = get(k)
        lat.append(clock() - t0)
        assert hit is not None
    t0 = clock()
    for k in picks:
        get(k)
    elapsed = clock() - t0
    return {**percentiles(lat), "lookups_per_s": round(lookups / elapsed)}


def cache_bench(entries: int, lookups: int) -> dict:
    rng = np.random.default_rng(7)
    ks = keys(entries)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.db"
        writer = ResponseCache(path, max_entries=entries)
        for k in ks:
            writer.put(k, ANSWER, "standard")
        memory = measure(writer, ks, lookups, rng)
        writer.close()
        disk_only = ResponseCache(path, max_entries=0)  # every hit comes from SQLite
        disk = measure(disk_only, ks, min(lookups, 100_000), rng)
        disk_only.close()
    return {"entries": entries, "memory": memory, "disk": disk}


def ask_bench(prompts: int, asks: int, logged: bool) -> dict:
    """Cached ``LLM.ask`` calls, as an LLM stage makes them for a bar it saw before. Logging
    as ``sorte up`` sets it (every call's line to the JSON log file, the console from
    warnings up), or with the per-call line filtered out (``logged`` False)."""
    import asyncio

    from sorte.config import LLMSettings, ProviderSettings, RoleSettings, RoleTarget
    from sorte.llm.client import LLM
    from sorte.llm.providers.fake import FakeProvider
    from sorte.logging import setup_logging
    from sorte.runtime.cascade.llm_stages import StageVerdict

    settings = LLMSettings(
        providers={"fake": ProviderSettings(kind="fake")},
        roles={"standard": RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])},
    )
    answer = json.dumps({"score": 0.734, "side": "BUY", "reason": "RSI recovering from oversold"})
    with tempfile.TemporaryDirectory() as tmp:
        setup_logging("info" if logged else "warning", "console", Path(tmp) / "sorte.jsonl", "warning")
        backend = FakeProvider("fake", settings.providers["fake"], [answer])
        llm = LLM(settings, Path(tmp) / "cache.db", {"fake": backend})
        msgs = [
            [{"role": "system", "content": "You judge trades."}, {"role": "user", "content": f"SYM{i} RSI {i % 97}"}]
            for i in range(prompts)
        ]
        order = np.random.default_rng(5).integers(0, prompts, asks).tolist()
        lat: list[float] = []

        async def run() -> None:
            for m in msgs:  # the misses that fill the cache, not timed
                await llm.ask("standard", m, StageVerdict, stage="technical")
            clock = time.perf_counter
            for i in order:
                t0 = clock()
                got = await llm.ask("standard", msgs[i], StageVerdict, stage="technical")
                lat.append(clock() - t0)
                assert got.cache == "hit-memory"

        asyncio.run(run())
        llm.cache.close()
    return percentiles(lat)


MODEL_SNIPPET = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from sorte.config import LLMSettings
from sorte.llm.client import LLM
from sorte.runtime.cascade.llm_stages import StageVerdict
from sorte.runtime.cascade.prompts import market_summary, read_prompts, render
from sorte.runtime import demo
from sorte.runtime.data import to_ohlcv
system, prompts = read_prompts(Path("strategies/prompts.py"))
bars = to_ohlcv(demo.generate(1, 200, seed=3)["ALPHA"])
llm = LLM(LLMSettings(), None)
times = []
async def main():
    for i in range(int(sys.argv[1])):
        msgs = render(system, prompts["technical"], market_summary(bars.window(100 + i, 62), "ALPHA", 1))
        t = time.perf_counter()
        await llm.ask("standard", msgs, StageVerdict, stage="technical", bypass_cache=True)
        times.append(time.perf_counter() - t)
asyncio.run(main())
print(json.dumps({"calls_s": times, "process_s": time.perf_counter() - t0}))
"""


def model_bench(calls: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MODEL_SNIPPET, str(calls)], cwd=REPO, capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    warm = data["calls_s"][1:]
    return {
        "cold_first_call_s": round(data["calls_s"][0], 3),
        "warm_p50_s": round(float(np.percentile(warm, 50)), 3),
        "warm_p99_s": round(float(np.percentile(warm, 99)), 3),
        "warm_calls": len(warm),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--lookups", type=int, default=200_000)
    ap.add_argument("--model-calls", type=int, default=11)
    ap.add_argument("--no-model", action="store_true")
    args = ap.parse_args()
    result = {
        "benchmark": "llm_cache",
        "command": ".venv/bin/python bench/llm_cache.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "cache": cache_bench(args.entries, args.lookups),
        "cached_ask": ask_bench(1_000, 20_000, logged=True),
        "cached_ask_unlogged": ask_bench(1_000, 20_000, logged=False),
    }
    if not args.no_model:
        result["embedded_model"] = model_bench(args.model_calls)
    c = result["cache"]
    targets = {
        "memory_p99_under_50us": c["memory"]["p99_us"] < 50,
        "disk_p99_under_1ms": c["disk"]["p99_us"] < 1000,
        "memory_over_100k_per_s": c["memory"]["lookups_per_s"] > 100_000,
    }
    result["targets_met"] = targets
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"cache ({c['entries']} entries):")
    for level in ("memory", "disk"):
        m = c[level]
        rate = f"{m['lookups_per_s']:>10,} lookups/s"
        print(f"  {level:6s} hit p50 {m['p50_us']:8.2f} us  p99 {m['p99_us']:8.2f} us  {rate}")
    for key, what in (("cached_ask", "logged as sorte up"), ("cached_ask_unlogged", "no per-call log line")):
        a = result[key]
        print(
            f"  LLM.ask from memory, {what}: p50 {a['p50_us']:8.2f} us  p99 {a['p99_us']:8.2f} us  "
            f"({a['p50_us'] / c['memory']['p50_us']:.0f}x the bare memory hit at p50)"
        )
    if "embedded_model" in result:
        e = result["embedded_model"]
        print(
            f"embedded SmolLM2: cold first call {e['cold_first_call_s']:.2f} s, warm p50 {e['warm_p50_s']:.2f} s "
            f"p99 {e['warm_p99_s']:.2f} s"
        )
    print("targets:", ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in targets.items()))
    sys.exit(0 if all(targets.values()) else 1)


if __name__ == "__main__":
    main()
