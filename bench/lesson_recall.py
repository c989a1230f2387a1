"""Lesson recall latency with 10,000 lessons in the store, and the cost of filling it.

    .venv/bin/python bench/lesson_recall.py [--lessons 10000] [--queries 300]

A fresh Chroma store (the real ``knowledge.LessonStore``, embedded all-MiniLM-L6-v2 on the
CPU) is filled in batches of 500 with synthetic but varied lessons generated from templates
(Portuguese and English requests, 12 strategies, 16 parameters, values, markets, outcomes,
metric deltas, rules), near-duplicate merging on, until it holds ``--lessons`` lessons.
Then ``--queries`` requests written from other templates than the stored ones are recalled
(k=5), without and with a strategy filter. Each query is also answered, interleaved in the
same loop, by the two anchors:

* ``embed only``: the embedding of the query alone, the floor of any recall by meaning;
* ``numpy brute force``: the same embedding plus an exact cosine search over the same
  10,000 vectors (one matrix-vector product and a partial sort).

The overlap of Chroma's top 5 (HNSW, approximate) with the exact top 5 is reported as a
check that the speed is not bought with wrong answers. Target (agent issue): recall p95
under 50 ms with 10,000 lessons. Results go to ``bench/results/lesson_recall.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from knowledge import Lesson, LessonStore, MiniLMEmbedder  # noqa: E402

RESULTS = REPO / "bench" / "results" / "lesson_recall.json"
TARGET_P95_MS = 50.0
K = 5

STRATEGIES = [
    "momentum",
    "mean_reversion",
    "breakout",
    "trend_following",
    "pairs_trading",
    "grid",
    "scalping",
    "volatility_squeeze",
    "rsi_divergence",
    "macd_cross",
    "bollinger_bounce",
    "cascade",
]
# (English name, Portuguese name, unit, values)
PARAMS = [
    ("stop loss", "stop loss", "%", [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]),
    ("take profit", "take profit", "%", [2, 3, 4, 5, 6, 8, 10, 12, 15]),
    ("trailing stop", "trailing stop", "%", [0.5, 1, 1.5, 2, 3, 4]),
    ("lookback window", "janela de lookback", " bars", [10, 14, 20, 30, 50, 100, 200]),
    ("RSI oversold level", "nível de sobrevenda do RSI", "", [20, 25, 30, 35]),
    ("RSI overbought level", "nível de sobrecompra do RSI", "", [65, 70, 75, 80]),
    ("position size", "tamanho da posição", "% of equity", [1, 2, 5, 10, 15, 20]),
    ("fast moving average", "média móvel rápida", " periods", [5, 8, 10, 12, 20]),
    ("slow moving average", "média móvel lenta", " periods", [26, 30, 50, 100, 200]),
    ("ATR multiplier", "multiplicador do ATR", "x", [1, 1.5, 2, 2.5, 3, 4]),
    ("volume filter", "filtro de volume", "x average volume", [1.2, 1.5, 2, 3]),
    ("Bollinger band width", "largura das bandas de Bollinger", " standard deviations", [1.5, 2, 2.5, 3]),
    ("minimum confidence", "confiança mínima", "", [0.6, 0.65, 0.7, 0.75, 0.8, 0.85]),
    ("holding time", "tempo de permanência", " seconds", [5, 10, 20, 30, 60, 90]),
    ("max daily loss", "perda diária máxima", "%", [1, 2, 3, 5]),
    ("entry cooldown", "intervalo entre entradas", " bars", [1, 2, 3, 5, 10]),
]
MARKETS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "GOOG", "EURUSD", "AAPL", "BNB/USDT", "XRP/USDT", "the demo market"]
CONTEXTS = [
    "in sideways markets",
    "during high volatility",
    "after the last drawdown",
    "on the hourly chart",
    "on daily bars",
    "for the weekend sessions",
    "when the trend is weak",
    "around news events",
    "",
    "",
]
PT_CONTEXTS = [
    "em mercado lateral",
    "com volatilidade alta",
    "depois do último drawdown",
    "no gráfico de uma hora",
    "nos candles diários",
    "no fim de semana",
    "",
    "",
]
EN_REQUESTS = [
    "raise the {p} of {s} to {v}{u} {c}",
    "lower {s}'s {p} to {v}{u} on {m}",
    "set the {p} in {s} to {v}{u}",
    "can you make the {p} of {s} {v}{u} {c}?",
    "try a {p} of {v}{u} for {s} on {m}",
    "{s}: change {p} to {v}{u} {c}",
]
PT_REQUESTS = [
    "aumenta o {p} do {s} para {v}{u} {c}",
    "diminui o {p} do {s} para {v}{u} em {m}",
    "coloca o {p} do {s} em {v}{u}",
    "muda o {p} da estratégia {s} para {v}{u} {c}",
    "testa {p} de {v}{u} no {s} em {m}",
]
RULES = {
    "merged": [
        "A {p} of {v}{u} on {s} improved the Sharpe ratio by {d:.2f} on {m} without a deeper drawdown.",
        "Setting {s}'s {p} to {v}{u} cut losing trades; keep it near that level {c}.",
        "{s} trades {m} better with a {p} of {v}{u}: return up {r:.1f}%.",
    ],
    "rejected": [
        "A {p} of {v}{u} made {s} overtrade on {m}; the trader rejected it.",
        "The trader prefers the old {p} for {s}: {v}{u} felt too aggressive {c}.",
    ],
    "failed": [
        "Changing {s}'s {p} to {v}{u} lowered the Sharpe ratio by {d:.2f} on {m}: the benchmark gate failed.",
        "A {p} of {v}{u} deepened {s}'s drawdown by {r:.1f}%; avoid it {c}.",
    ],
    "rolled_back": [
        "{s} with a {p} of {v}{u} did worse live than in the backtest on {m} and was rolled back.",
    ],
}
QUERY_TEMPLATES = [
    "what happened when we changed the {p} of {s}?",
    "should {s} use a tighter {p}?",
    "o que aprendemos sobre o {pp} do {s}?",
    "vale a pena mexer no {pp} do {s} em {m}?",
    "{p} experiments on {m}",
    "did a bigger {p} help {s} {c}?",
]


def fmt(value: float) -> str:
    return f"{value:g}"


def make_lessons(n: int, rng: random.Random, start: int) -> list[Lesson]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    lessons = []
    for i in range(start, start + n):
        strategy = rng.choice(STRATEGIES)
        en, pt, unit, values = rng.choice(PARAMS)
        value = fmt(rng.choice(values))
        market = rng.choice(MARKETS)
        portuguese = rng.random() < 0.4
        template = rng.choice(PT_REQUESTS if portuguese else EN_REQUESTS)
        context = rng.choice(PT_CONTEXTS if portuguese else CONTEXTS)
        request = template.format(p=pt if portuguese else en, s=strategy, v=value, u=unit, c=context, m=market)
        outcome = rng.choices(list(RULES), weights=[5, 2, 3, 1])[0]
        delta = rng.uniform(0.01, 0.6)
        sharpe = delta if outcome == "merged" else -delta
        rule = rng.choice(RULES[outcome]).format(
            p=en, s=strategy, v=value, u=unit, m=market, c=rng.choice(CONTEXTS) or "", d=delta, r=rng.uniform(0.2, 9)
        )
        at = t0 + timedelta(minutes=7 * i)
        lessons.append(
            Lesson(
                created_at=at,
                updated_at=at,
                request=" ".join(request.split()),
                strategy=strategy,
                kind="parameter",
                plan_summary=f"set {strategy}.{en.replace(' ', '_')} = {value}",
                outcome=outcome,
                verdict={"merged": "pass", "rejected": "pass", "failed": "fail", "rolled_back": "pass"}[outcome],
                metric_deltas={"sharpe": round(sharpe, 3), "return_pct": round(rng.uniform(-5, 5), 2)},
                rule=" ".join(rule.split()),
                commit=f"{rng.getrandbits(160):040x}",
                run_id=f"r{i:06d}",
                language="pt" if portuguese else "en",
            )
        )
    return lessons


def make_queries(n: int, rng: random.Random) -> list[tuple[str, str]]:
    queries = []
    for _ in range(n):
        strategy = rng.choice(STRATEGIES)
        en, pt, _, _ = rng.choice(PARAMS)
        text = rng.choice(QUERY_TEMPLATES).format(
            p=en, pp=pt, s=strategy, m=rng.choice(MARKETS), c=rng.choice(CONTEXTS)
        )
        queries.append((" ".join(text.split()), strategy))
    return queries


class TimedEmbedder:
    """The real embedder, with the time spent embedding added up (the insert's share of it)."""

    def __init__(self, inner: MiniLMEmbedder):
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def embed(self, texts):
        start = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - start


def pct(samples_s: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples_s) * 1000, q))


def summary(samples_s: list[float]) -> dict:
    return {
        "n": len(samples_s),
        "p50_ms": round(pct(samples_s, 50), 3),
        "p95_ms": round(pct(samples_s, 95), 3),
        "p99_ms": round(pct(samples_s, 99), 3),
        "mean_ms": round(statistics.fmean(samples_s) * 1000, 3),
        "max_ms": round(max(samples_s) * 1000, 3),
    }


def machine() -> dict:
    """The edit-plan benchmark's machine description (CPU, cores, load), plus this benchmark's stack."""
    import chromadb
    import sentence_transformers
    import torch
    from edit_plan import machine as base_machine  # bench/ is this script's folder

    return {
        **base_machine(),
        "chromadb": chromadb.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="sorte-lessons-"))
    try:
        started = time.perf_counter()
        embedder = TimedEmbedder(MiniLMEmbedder())
        embedder.embed(["warm up"])
        model_load_s = time.perf_counter() - started
        embedder.seconds = 0.0
        store = LessonStore(folder, embedder)

        generated, insert_s = 0, 0.0
        while store.count() < args.lessons:
            batch = make_lessons(min(args.batch, args.lessons - store.count()), rng, generated)
            generated += len(batch)
            start = time.perf_counter()
            store.add_many(batch, batch_size=args.batch)
            insert_s += time.perf_counter() - start
            print(f"\r{store.count():>6} lessons ({generated} generated)", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        stored = store.count()
        embed_s = embedder.seconds

        # the same vectors, for the exact search anchor
        got = store._col.get(include=["embeddings"])
        ids = np.array(got["ids"])
        matrix = np.asarray(got["embeddings"], dtype=np.float32)

        queries = make_queries(args.queries, rng)
        for text, strategy in queries[:10]:  # warm up every path
            store.recall(text, k=K)
            store.recall(text, strategy=strategy, k=K)
        times: dict[str, list[float]] = {"recall": [], "recall_strategy": [], "embed_only": [], "numpy_brute_force": []}
        overlap = []
        for i, (text, strategy) in enumerate(queries):
            steps = [
                ("recall", lambda text=text: store.recall(text, k=K)),
                ("recall_strategy", lambda text=text, strategy=strategy: store.recall(text, strategy=strategy, k=K)),
                ("embed_only", lambda text=text: embedder.embed([text])),
                ("numpy_brute_force", lambda text=text: exact_top(matrix, embedder.embed([text])[0])),
            ]
            rot = i % len(steps)  # interleaved, in a rotating order
            for name, step in steps[rot:] + steps[:rot]:
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
            vector = embedder.embed([text])
            approx = store._col.query(query_embeddings=vector, n_results=K, include=[])["ids"][0]
            exact = ids[exact_top(matrix, vector[0])]
            overlap.append(len(set(approx) & set(exact)) / K)

        results = {name: summary(samples) for name, samples in times.items()}
        p95 = results["recall"]["p95_ms"]
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "lessons": stored,
            "generated": generated,
            "merged_away": generated - stored,
            "k": K,
            "model_load_s": round(model_load_s, 2),
            "insert": {
                "seconds": round(insert_s, 2),
                "lessons_per_s": round(generated / insert_s, 1),
                "embedding_seconds": round(embed_s, 2),
                "store_seconds": round(insert_s - embed_s, 2),
                "batch": args.batch,
            },
            "recall": results,
            "ratios_p95": {
                "recall_vs_embed_only": round(p95 / results["embed_only"]["p95_ms"], 2),
                "recall_vs_numpy_brute_force": round(p95 / results["numpy_brute_force"]["p95_ms"], 2),
            },
            "top5_overlap_with_exact": round(statistics.fmean(overlap), 4),
            "target_p95_ms": TARGET_P95_MS,
            "target_met": p95 < TARGET_P95_MS,
            "samples_ms": {name: [round(s * 1000, 3) for s in samples] for name, samples in times.items()},
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")

    print(f"{stored} lessons ({generated} generated, {generated - stored} merged as near duplicates)")
    print(
        f"insert: {insert_s:.1f} s, {generated / insert_s:.0f} lessons/s "
        f"(embedding {embed_s:.1f} s, Chroma and merge checks {insert_s - embed_s:.1f} s); "
        f"model load {model_load_s:.1f} s"
    )
    print(f"{'':24}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, row in results.items():
        print(f"{name:24}{row['p50_ms']:9.2f}{row['p95_ms']:9.2f}{row['p99_ms']:9.2f}")
    print(
        f"recall p95 / embed only: {report['ratios_p95']['recall_vs_embed_only']}x, "
        f"/ numpy brute force: {report['ratios_p95']['recall_vs_numpy_brute_force']}x; "
        f"top-5 overlap with exact search {report['top5_overlap_with_exact']:.3f}"
    )
    print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'met' if report['target_met'] else 'NOT met'}")
    print(f"written to {RESULTS.relative_to(REPO)}")


def exact_top(matrix: np.ndarray, vector: np.ndarray, k: int = K) -> np.ndarray:
    scores = matrix @ vector
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


if __name__ == "__main__":
    main()
