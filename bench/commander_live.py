"""Candle close on the exchange -> both slots' decisions, for 50 symbols on a live feed.

    .venv/bin/python bench/commander_live.py [--symbols 50] [--candles 200] [--every 0.5] [--quick]
        [--warmup 10] [--settle S] [--cache-synchronous FULL|NORMAL] [--fake-in-process] [--out PATH]

One commander (``commander.engine.Commander``, local slot processes, on a throw-away git
repository holding this project's files) trades a live market: its ``LiveSource`` over one
``sorte.market.Collector`` on the tests' fake Binance (REST and the WebSocket kline stream,
through the real ccxt client), the collector's clock being the exchange's (the only
injection, as in ``tests/commander/test_live_feed.py``). The exchange lists ``--symbols``
symbols (S00/USDT, S01/USDT, ...) and moves on by one 1m candle every ``--every`` seconds of
wall time: right before each ``advance`` the ticker notes ``time.monotonic()`` (the close
moment: the exchange then publishes the closed candle and the new one on every stream).

Both slots decide every step: once the first deployment (HEAD) trades, a second deployment of
HEAD is requested with ``commander.shadow_bars`` far larger than the run, so the A/A candidate
stays in shadow the whole time. The span starts once it runs and the newest candle came over
the WebSocket for every symbol (the streams start delivering one after another over the first
~15 s; until then due candles come from REST polls, late and in pieces); ``--warmup`` steps are
left out, then ``--candles`` candles are measured.

By default the fake exchange runs in a child process (as a remote exchange would, its work
is not on the commander's interpreter lock; it still takes CPU on this machine): its ticking
loop notes the close moments (CLOCK_MONOTONIC, shared by the host's processes) and publishes
its clock through shared memory. ``--fake-in-process`` runs it as the test does, threads of
the commander's process.

Per candle (matched on the bar's sequence number, open time // interval):

* **latency**: the later of the two slots' replies arriving at the commander
  (``CommanderObserver.on_step_reply``) minus the close moment; a candle whose bars came in
  more than one batch counts its last reply;
* the feed: the exchange writing the candle's events, close -> first and last bar emitted by
  the collector (the emitter's ``emit``, wrapped by this script to note the time, and which
  bars came more than 20 ms after the first), the candle cache's writes meanwhile (its
  ``put``, wrapped likewise: one SQLite commit per symbol), close -> batch handed to the step
  loop (``next_batch`` returning, in a ``LiveSource`` subclass), and whether the commander was
  already waiting for it; the garbage collector's pauses in the commander's process;
* the step: step start -> each slot got it (``Done.t_recv``), the slot's decision time
  (``Done.latency_ms``: the cascade over all symbols), the rest of the slot's step (``Done.t``
  - ``t_recv`` - decision: on the active slot the ledger commit and the snapshot), the reply's
  way back, and the commander's whole step (``on_step``);
* CPU seconds of each process over the measured span (``/proc``: the commander, each slot
  with its strategy worker, the fake exchange).

Anchors compared as ratios in the same run: the slots' decision time and the commander's
step time. Target (issue 17): p99 < 250 ms. Market settings are the defaults but for
``prefetch_bars`` (100: a quicker start; the path of a candle is the same); ``--settle``
changes ``market.batch_settle_s``. ``--cache-synchronous NORMAL`` is a what-if, not a
setting: the candle cache's SQLite connection switched to ``synchronous=NORMAL`` after it was
opened (``sorte/market/cache.py`` opens it with FULL).
Results go to ``bench/results/commander_live.json`` (``--out``); exit status 1 if the target
is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fake exchange and the copy-of-this-project helper

from fake_exchange import FakeBinance  # noqa: E402
from latency_figures import stats  # noqa: E402
from project_repo import copy_project, git  # noqa: E402

from commander.engine import Commander  # noqa: E402
from commander.observer import CommanderObserver  # noqa: E402
from commander.protocol import Done, Fault  # noqa: E402
from commander.requests import request_deployment  # noqa: E402
from commander.runs import SlotRun  # noqa: E402
from commander.source import LiveSource  # noqa: E402
from sorte.config import Settings  # noqa: E402
from sorte.market import Collector  # noqa: E402
from sorte.runtime.values import Bar  # noqa: E402

RESULTS = REPO / "bench" / "results" / "commander_live.json"
TARGET_P99_MS = 250.0
HISTORY_BARS = 300  # closed candles on the exchange before the run (prefetch_bars must fit)
PREFETCH_BARS = 100
TICK = os.sysconf("SC_CLK_TCK")


# -- the exchange and its clock ---------------------------------------------------------------
def symbols_for(n: int) -> list[str]:
    return [f"S{i:02d}/USDT" for i in range(n)]


def tick_loop(fake: FakeBinance, every_s: float, go: Any, stop: Any, closes: Any, count: Any, now_ms: Any) -> None:
    """Advance the exchange by one candle every ``every_s`` (a fixed rate), noting the close
    moment of each candle (``closes[3k]``: its seq, ``closes[3k+1]``: monotonic time,
    ``closes[3k+2]``: when every stream event of it had been written to the sockets)."""
    go.wait()
    next_t = time.monotonic() + every_s
    while True:
        if stop.wait(max(0.0, next_t - time.monotonic())):
            return
        k = count.value
        if 3 * k + 2 >= len(closes):
            return
        closes[3 * k] = fake.seq(fake.current_index())
        closes[3 * k + 1] = time.monotonic()  # the candle closes: the exchange publishes it now
        now_ms.value = fake.now_ms + fake.interval_ms
        fake.advance(1)
        closes[3 * k + 2] = time.monotonic()
        count.value = k + 1
        next_t += every_s


def fake_main(conn: Any, symbols: list[str], future: int, every_s: float, shared: dict[str, Any]) -> None:
    """The fake exchange in a child process: REST, WebSocket and the ticking loop."""
    fake = FakeBinance(tuple(symbols), bars=HISTORY_BARS, future=future).start().start_stream()
    shared["now_ms"].value = fake.now_ms
    conn.send((fake.url, fake.ws_url))
    try:
        tick_loop(fake, every_s, shared["go"], shared["stop"], shared["closes"], shared["count"], shared["now_ms"])
    finally:
        fake.stop()


class Market:
    """The fake exchange (in a child process, or in this one) and the shared record of closes."""

    def __init__(self, symbols: list[str], future: int, every_s: float, in_process: bool) -> None:
        ctx = mp.get_context("fork")  # forked first thing, before any thread of this process
        self.shared = {
            "go": ctx.Event(),
            "stop": ctx.Event(),
            "closes": ctx.RawArray(ctypes.c_double, 3 * future),
            "count": ctx.RawValue(ctypes.c_long, 0),
            "now_ms": ctx.RawValue(ctypes.c_longlong, 0),
        }
        self.in_process, self.proc, self.thread, self.fake = in_process, None, None, None
        if in_process:
            self.fake = FakeBinance(tuple(symbols), bars=HISTORY_BARS, future=future).start().start_stream()
            self.shared["now_ms"].value = self.fake.now_ms
            self.url, self.ws_url = self.fake.url, self.fake.ws_url
            s = self.shared
            args = (self.fake, every_s, s["go"], s["stop"], s["closes"], s["count"], s["now_ms"])
            self.thread = threading.Thread(target=tick_loop, args=args, daemon=True)
            self.thread.start()
        else:
            parent, child = ctx.Pipe()
            self.proc = ctx.Process(target=fake_main, args=(child, symbols, future, every_s, self.shared), daemon=True)
            self.proc.start()
            self.url, self.ws_url = parent.recv()

    def now(self) -> float:
        return self.shared["now_ms"].value / 1000

    @property
    def candles(self) -> int:
        return int(self.shared["count"].value)

    def closes(self) -> dict[int, tuple[float, float]]:
        """seq -> (close moment, all its stream events written)."""
        c = self.shared["closes"]
        return {int(c[3 * k]): (c[3 * k + 1], c[3 * k + 2]) for k in range(self.candles)}

    def stop(self) -> None:
        self.shared["stop"].set()
        if self.thread is not None:
            self.thread.join(5)
        if self.fake is not None:
            self.fake.stop()
        if self.proc is not None:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


class SharedTime:
    """The collector's clock: the exchange's, read from the shared counter."""

    def __init__(self, market: Market) -> None:
        self.market = market

    def now(self) -> float:
        return self.market.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# -- what the commander did, when ----------------------------------------------------------------
class TimedSource(LiveSource):
    """The commander's live source, noting when each batch was asked for and handed out."""

    def __init__(self, collector: Collector, slow_disk_s: float = 0.0) -> None:
        super().__init__(collector)
        self.batches: list[dict[str, Any]] = []
        emitter, emit = collector.emitter, collector.emitter.emit
        self.emitted: dict[int, list[Any]] = {}  # seq -> [first t, last t, bars, via websocket]
        self.emit_t: dict[int, dict[str, float]] = defaultdict(dict)  # seq -> symbol -> t

        def timed_emit(state: Any, rows: Any, via: Any, now: float) -> int:
            n = emit(state, rows, via, now)
            if n:
                t = time.monotonic()
                for seq in range(state.last_seq - n + 1, state.last_seq + 1):
                    e = self.emitted.setdefault(seq, [t, t, 0, 0])
                    e[1] = t
                    e[2] += 1
                    e[3] += via == "websocket"
                    self.emit_t[seq][state.symbol] = t
            return n

        emitter.emit = timed_emit  # type: ignore[method-assign]

        # the candle cache's writes (SQLite, WAL, synchronous=FULL: a commit per emitted batch)
        cache, put = collector.cache, collector.cache.put
        self.puts: list[tuple[float, float]] = []  # (start, seconds)

        def timed_put(symbol: str, timeframe: str, rows: Any) -> int:
            t = time.monotonic()
            try:
                if slow_disk_s:  # a what-if: a slower fsync, blocking the event loop as one does
                    time.sleep(slow_disk_s)
                return put(symbol, timeframe, rows)
            finally:
                self.puts.append((t, time.monotonic() - t))

        cache.put = timed_put  # type: ignore[method-assign]

    async def next_batch(self) -> list[Bar] | None:
        asked = time.monotonic()
        batch = await super().next_batch()
        if batch:
            self.batches.append({"asked": asked, "t": time.monotonic(), "seq": batch[0].seq, "n": len(batch)})
        return batch


class GcPauses:
    """The garbage collector's pauses in this process (the commander's event loop stops)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (start, seconds, generation)
        self._start = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        t = time.monotonic()
        if phase == "start":
            self._start = t
        else:
            self.pauses.append((self._start, t - self._start, int(info["generation"])))

    def within(self, start: float, end: float) -> list[tuple[float, float, int]]:
        return [p for p in self.pauses if p[0] < end and p[0] + p[1] > start]


class Clocks(CommanderObserver):
    """Each slot's reply to each step, and each step's time."""

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self._seqs: set[int] = set()

    def on_step_reply(self, run: SlotRun, bars: list[Bar], entries: bool, reply: Done | Fault) -> None:
        t = time.monotonic()
        seqs = {b.seq for b in bars}
        self._seqs |= seqs
        r: dict[str, Any] = {"t": t, "slot": run.slot, "role": run.role, "deployment": run.deployment.id}
        r.update(seqs=sorted(seqs), n=len(bars))
        if isinstance(reply, Done):
            r.update(tick=reply.tick, t_recv=reply.t_recv, t_done=reply.t, decision_ms=reply.latency_ms)
        else:
            r.update(fault=f"{reply.kind}: {reply.detail}"[:200])
        self.replies.append(r)

    def on_step(self, tick: int, seconds: float) -> None:
        t = time.monotonic()
        self.steps.append({"tick": tick, "start": t - seconds, "end": t, "s": seconds, "seqs": sorted(self._seqs)})
        self._seqs = set()


class Driver:
    """The ``until`` callback: asks for the A/A candidate, starts the market, starts and stops
    the measured span."""

    def __init__(
        self,
        settings: Settings,
        repo: Path,
        market: Market,
        source: TimedSource,
        clocks: Clocks,
        warmup: int,
        candles: int,
        deadline_s: float,
    ) -> None:
        self.settings, self.repo, self.market, self.source, self.clocks = settings, repo, market, source, clocks
        self.warmup, self.candles = warmup, candles
        self.deadline = time.monotonic() + deadline_s
        self.phase = "start"
        self.both_from: int | None = None  # first tick both slots ran
        self.measure_from: int | None = None
        self.cpu_start: dict[str, float] = {}
        self.cpu_end: dict[str, float] = {}
        self.span: list[float] = []
        self.pids: dict[str, int] = {}
        self.timed_out = False

    def __call__(self, c: Commander) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            self._cpu(c, self.cpu_end)
            return True
        if self.phase == "start":
            head = git(self.repo, "rev-parse", "HEAD")
            request_deployment(self.settings.data_dir, head, "bench", "aa-shadow")
            self.market.shared["go"].set()  # the commander is up and warm: the market moves
            self.phase = "deploying"
        elif self.phase == "deploying":
            # the kline streams start delivering one after another: until every symbol streams,
            # due candles come from REST polls, late and in pieces
            if c.candidate() is not None and c.starting is None and self.streaming():
                self.both_from = c.tick + 1
                self.measure_from = self.both_from + self.warmup
                self.phase = "warming"
        elif self.phase == "warming":
            if c.tick + 1 >= (self.measure_from or 0):
                self._cpu(c, self.cpu_start)
                self.phase = "measuring"
        elif self.phase == "measuring":
            # one candle beyond the span: a candle split over two batches is complete too
            seqs = {q for s in self.clocks.steps if s["tick"] >= (self.measure_from or 0) for q in s["seqs"]}
            if len(seqs) >= self.candles + 2:
                self._cpu(c, self.cpu_end)
                return True
        return False

    def streaming(self) -> bool:
        """Whether the newest candle came over the WebSocket for every symbol."""
        emitted = self.source.emitted
        return bool(emitted) and emitted[max(emitted)][3] == len(self.source.symbols)

    def _cpu(self, c: Commander, into: dict[str, float]) -> None:
        self.span.append(time.monotonic())
        for slot, run in c.slots.items():
            self.pids[f"slot {slot} ({run.role})"] = run.client.process.proc.pid
        self.pids["commander (this process)"] = os.getpid()
        if self.market.proc is not None:
            self.pids["fake exchange"] = self.market.proc.pid
        for name, pid in self.pids.items():
            into[name] = tree_cpu_s(pid, with_children=name.startswith("slot"))


def tree_cpu_s(pid: int, with_children: bool) -> float:
    """User + system CPU seconds of ``pid`` (and its living descendants)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    wanted, total = {pid}, 0.0
    changed = True
    while changed and with_children:
        changed = False
        for p, (ppid, _) in stats.items():
            if ppid in wanted and p not in wanted:
                wanted.add(p)
                changed = True
    for p in wanted:
        if p in stats:
            total += stats[p][1]
    return total


# -- figures ---------------------------------------------------------------------------------
def per_candle(
    clocks: Clocks, source: TimedSource, market: Market, driver: Driver, gcp: GcPauses, n_symbols: int
) -> list[dict]:
    """One row per measured candle: every clock of its way from the close to both decisions."""
    closes = market.closes()
    replies: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in clocks.replies:
        for seq in r["seqs"]:
            replies[seq].append(r)
    steps: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in clocks.steps:
        for seq in s["seqs"]:
            steps[seq].append(s)
    batches: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for b in source.batches:
        batches[b["seq"]].append(b)
    rows = []
    for seq in sorted(replies):
        rs, ss = replies[seq], steps.get(seq, [])
        if not ss or min(s["tick"] for s in ss) < (driver.measure_from or 0) or seq not in closes:
            continue
        done = [r for r in rs if "fault" not in r]
        slots = {r["slot"] for r in done}
        close, published = closes[seq]
        last = max(r["t"] for r in rs)
        gcs = gcp.within(close, last)
        puts = [d for t, d in source.puts if close <= t <= last]
        first_t = min(source.emit_t[seq].values()) if source.emit_t.get(seq) else close
        bars = sum(r["n"] for r in rs if r["role"] == "active")
        em = source.emitted.get(seq)
        bs = batches.get(seq, [])
        first_step = min(ss, key=lambda s: s["tick"])
        row: dict[str, Any] = {
            "seq": seq,
            "ticks": sorted(s["tick"] for s in ss),
            "batches": len(bs),
            "bars": bars,
            "slots": len(slots),
            "faults": [r["fault"] for r in rs if "fault" in r],
            "latency_ms": (last - close) * 1000,
            "published_ms": (published - close) * 1000,
            "first_emit_ms": (em[0] - close) * 1000 if em else None,
            "last_emit_ms": (em[1] - close) * 1000 if em else None,
            "streamed": em[3] if em else 0,
            "batch_ms": (max(b["t"] for b in bs) - close) * 1000 if bs else None,
            # the commander was busy (a step, between steps) when the candle closed
            "waiting": bool(bs) and min(b["asked"] for b in bs) <= close,
            "step_start_ms": (first_step["start"] - close) * 1000,
            "step_ms": sum(s["s"] for s in ss) * 1000,
            "step_end_ms": (max(s["end"] for s in ss) - close) * 1000,
            "gc_ms": sum(g[1] for g in gcs) * 1000,
            "cache_writes": len(puts),
            "cache_write_ms": sum(puts) * 1000,
            "cache_write_max_ms": max(puts, default=0.0) * 1000,
            "gc_generations": sorted({g[2] for g in gcs}),
            # bars emitted more than 20 ms after the candle's first one: symbol -> ms after the close
            "late_bars": {
                sym: round((t - close) * 1000, 1) for sym, t in source.emit_t.get(seq, {}).items() if t - first_t > 0.02
            },
        }
        for role in ("active", "shadow"):
            mine = [r for r in done if r["role"] == role]
            if not mine:
                continue
            r = max(mine, key=lambda x: x["t"])
            start = next((s["start"] for s in ss if s["tick"] == r["tick"]), first_step["start"])
            row[role] = {
                "reply_ms": (r["t"] - close) * 1000,
                "to_slot_ms": (r["t_recv"] - start) * 1000,
                "decision_ms": sum(x["decision_ms"] for x in mine),
                "slot_rest_ms": (r["t_done"] - r["t_recv"]) * 1000 - r["decision_ms"],
                "back_ms": (r["t"] - r["t_done"]) * 1000,
            }
        row["complete"] = bars == n_symbols and len(slots) == 2 and not row["faults"]
        rows.append(row)
    return rows


def summarise(rows: list[dict], candles: int, driver: Driver, c: Commander, wall_s: float) -> dict[str, Any]:
    measured = [r for r in rows if r["complete"]][:candles]
    lat = [r["latency_ms"] for r in measured]

    def col(key: str, role: str | None = None) -> list[float]:
        if role is None:
            return [r[key] for r in measured if r.get(key) is not None]
        return [r[role][key] for r in measured if role in r]

    decision_max = [max(r["active"]["decision_ms"], r["shadow"]["decision_ms"]) for r in measured]
    step = col("step_ms")
    span = driver.span[1] - driver.span[0] if len(driver.span) >= 2 else None
    cpu = {k: round(driver.cpu_end.get(k, 0) - v, 2) for k, v in driver.cpu_start.items()}
    lat_s, dec_s, step_s = stats(lat), stats(decision_max), stats(step)
    summary: dict[str, Any] = {
        "wall_s": round(wall_s, 1),
        "ticks": c.tick,
        "candles_measured": len(measured),
        "incomplete_candles": [
            {k: r[k] for k in ("seq", "bars", "slots", "batches", "faults")} for r in rows if not r["complete"]
        ],
        "split_candles": sum(1 for r in measured if r["batches"] > 1),
        "commander_busy_at_close": sum(1 for r in measured if not r["waiting"]),
        "latency_ms": lat_s,
        "feed": {
            "exchange_publish_ms": stats(col("published_ms")),
            "close_to_first_bar_emitted_ms": stats(col("first_emit_ms")),
            "close_to_last_bar_emitted_ms": stats(col("last_emit_ms")),
            "close_to_batch_ms": stats(col("batch_ms")),
            "close_to_step_start_ms": stats(col("step_start_ms")),
            "streamed_bars": sum(r["streamed"] for r in measured),
        },
        "step": {
            "commander_step_ms": step_s,
            "last_reply_to_step_end_ms": stats([r["step_end_ms"] - r["latency_ms"] for r in measured]),
        },
        "slots": {
            role: {
                "to_slot_ms": stats(col("to_slot_ms", role)),
                "decision_ms": stats(col("decision_ms", role)),
                "slot_rest_ms": stats(col("slot_rest_ms", role)),
                "back_ms": stats(col("back_ms", role)),
                "reply_after_close_ms": stats(col("reply_ms", role)),
            }
            for role in ("active", "shadow")
        },
        "anchors": {"decision_ms_slower_slot": dec_s, "commander_step_ms": step_s},
        "ratios": {
            "latency_p50_over_decision_p50": round(lat_s["p50"] / dec_s["p50"], 2) if lat and dec_s["p50"] else None,
            "latency_p99_over_decision_p99": round(lat_s["p99"] / dec_s["p99"], 2) if lat and dec_s["p99"] else None,
            "latency_p50_over_step_p50": round(lat_s["p50"] / step_s["p50"], 2) if lat and step_s["p50"] else None,
            "feed_p50_share_of_latency": (
                round(stats(col("step_start_ms"))["p50"] / lat_s["p50"], 2) if lat and lat_s["p50"] else None
            ),
        },
        "gc_in_latency": {
            "candles_with_a_pause": sum(1 for r in measured if r["gc_ms"] > 0),
            "pause_ms": stats([r["gc_ms"] for r in measured if r["gc_ms"] > 0]),
            "candles_with_gen2": sum(1 for r in measured if 2 in r["gc_generations"]),
        },
        "candles_with_late_bars": sum(1 for r in measured if r["late_bars"]),
        "candle_cache_writes": {
            "per_candle_total_ms": stats(col("cache_write_ms")),
            "slowest_write_per_candle_ms": stats(col("cache_write_max_ms")),
        },
        "cpu_s": cpu,
        "cpu_span_s": round(span, 1) if span else None,
        "cpu_share_of_2_cores": (
            round(sum(cpu.values()) / (span * (os.cpu_count() or 1)), 3) if span and cpu else None
        ),
        "candles_not_all_streamed": sum(1 for r in measured if r["streamed"] != r["bars"]),
        "feed_gaps": c.feed_gaps,
        "restarts": c.restarts,
        "timed_out": driver.timed_out,
        "target_p99_ms": TARGET_P99_MS,
    }
    summary["met"] = bool(lat) and len(measured) >= candles and lat_s["p99"] < TARGET_P99_MS
    return summary


# -- run -------------------------------------------------------------------------------------
def settings_for(repo: Path, data: Path, market: Market, symbols: list[str], settle_s: float | None) -> Settings:
    m: dict[str, Any] = {"prefetch_bars": PREFETCH_BARS}
    if settle_s is not None:
        m["batch_settle_s"] = settle_s
    return Settings(
        data_dir=data,
        strategies_dir=repo / "strategies",
        git={"repo_root": str(repo)},
        runtime={"feed": "ccxt", "symbols": symbols},
        exchange={"base_url": market.url, "ws_url": market.ws_url, "timeframe": "1m"},
        market=m,
        commander={"shadow_bars": 1_000_000},  # the A/A candidate is never judged: both slots decide every step
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--candles", type=int, default=200, help="measured candles")
    parser.add_argument("--every", type=float, default=0.5, help="seconds of wall time per 1m candle")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out once both slots run")
    parser.add_argument("--settle", type=float, default=None, help="market.batch_settle_s (default: the setting's)")
    parser.add_argument(
        "--cache-synchronous",
        choices=("FULL", "NORMAL"),
        default="FULL",
        help="the candle cache's SQLite synchronous mode (FULL as shipped; NORMAL: what-if, not a setting)",
    )
    parser.add_argument(
        "--slow-disk-ms",
        type=float,
        default=0.0,
        help="what-if: add this many ms to every candle cache write (a slow fsync); 0 as measured",
    )
    parser.add_argument("--fake-in-process", action="store_true", help="the fake exchange in this process")
    parser.add_argument("--quick", action="store_true", help="40 candles: a smoke check")
    parser.add_argument("--deadline", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    candles = 40 if args.quick else args.candles
    symbols = symbols_for(args.symbols)
    future = candles + args.warmup + 400  # candles the exchange can still close (the slot start included)
    market = Market(symbols, future, args.every, args.fake_in_process)

    # errors only: while ccxt subscribes the 50 streams the symbols not yet streaming go stale
    # (a warning and an alert each, as the exchange's clock runs 120 times faster than a wall clock)
    os.environ.setdefault("SORTE_LOG_LEVEL", "error")
    from sorte.logging import setup_logging

    setup_logging("error", "console")
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="sorte-bench-live-") as tmp:
            repo = copy_project(Path(tmp) / "repo")
            settings = settings_for(repo, Path(tmp) / "var", market, symbols, args.settle)
            source = TimedSource(Collector(settings, clock=SharedTime(market)), args.slow_disk_ms / 1000)
            if args.cache_synchronous != "FULL":  # a what-if: sorte/market/cache.py opens it with FULL
                source.collector.cache.db.execute(f"PRAGMA synchronous={args.cache_synchronous}")
            clocks, gcp = Clocks(), GcPauses()
            driver = Driver(settings, repo, market, source, clocks, args.warmup, candles, args.deadline)
            commander = Commander(settings, source=source, observer=clocks)
            t0 = time.monotonic()
            asyncio.run(commander.run(until=driver))
            wall = time.monotonic() - t0
            health = source.health()
    finally:
        market.stop()
    load_after = os.getloadavg()
    rows = per_candle(clocks, source, market, driver, gcp, len(symbols))
    summary = summarise(rows, candles, driver, commander, wall)
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()

    s = summary

    def line(name: str, st: dict[str, Any]) -> None:
        if st.get("n"):
            print(f"{name:<44}{st['p50']:>9.1f}{st['p95']:>9.1f}{st['p99']:>9.1f}{st['max']:>9.1f}")

    print(f"{len(symbols)} symbols, one candle every {args.every} s, {s['candles_measured']} candles measured")
    print(f"{'ms after the close (or duration)':<44}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    line("LATENCY: close -> both slots' replies", s["latency_ms"])
    line("exchange: close -> its events written", s["feed"]["exchange_publish_ms"])
    line("close -> first bar emitted", s["feed"]["close_to_first_bar_emitted_ms"])
    line("close -> last bar emitted", s["feed"]["close_to_last_bar_emitted_ms"])
    line("close -> batch to the step loop", s["feed"]["close_to_batch_ms"])
    line("close -> step start", s["feed"]["close_to_step_start_ms"])
    line("commander step", s["step"]["commander_step_ms"])
    for role in ("active", "shadow"):
        for k in ("to_slot_ms", "decision_ms", "slot_rest_ms", "back_ms"):
            line(f"  {role}: {k}", s["slots"][role][k])
    line("anchor: decision, slower slot", s["anchors"]["decision_ms_slower_slot"])
    print()
    for k in (
        "ratios",
        "gc_in_latency",
        "candle_cache_writes",
        "candles_with_late_bars",
        "cpu_s",
        "cpu_span_s",
        "cpu_share_of_2_cores",
        "split_candles",
        "commander_busy_at_close",
    ):
        print(f"{k:<28}{json.dumps(s[k])}")
    print(f"{'incomplete candles':<28}{len(s['incomplete_candles'])}  feed_gaps {s['feed_gaps']}")
    verdict = "met" if s["met"] else "NOT met"
    print(f"target p99 < {TARGET_P99_MS:.0f} ms: {verdict} (p99 {s['latency_ms'].get('p99')} ms)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "commander_live",
                "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "git": git_version,
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                },
                "args": {
                    "symbols": len(symbols),
                    "candles": candles,
                    "every_s": args.every,
                    "warmup": args.warmup,
                    "fake_in_process": args.fake_in_process,
                    "cache_synchronous": args.cache_synchronous,
                    "slow_disk_ms": args.slow_disk_ms,
                    "quick": args.quick,
                },
                "settings": {
                    "market": settings.market.model_dump(exclude={"pairs", "b3"}),
                    "commander": {"shadow_bars": settings.commander.shadow_bars},
                    "changed": {"market.prefetch_bars": PREFETCH_BARS, "commander.shadow_bars": 1_000_000}
                    | ({"market.batch_settle_s": args.settle} if args.settle is not None else {}),
                },
                "summary": summary,
                "collector": {
                    k: getattr(health, k)
                    for k in ("mode", "reconnects", "poll_failures", "backfilled_candles", "streamed_candles", "gaps")
                },
                "candles": rows,
            },
            indent=2,
            default=str,
        )
    )
    return 0 if s["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
