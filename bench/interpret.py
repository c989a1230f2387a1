"""The request interpreter on its evaluation set: accuracy per category and per tier, wrong
edits, latency.

    .venv/bin/python bench/interpret.py [--part holdout|dev|both] [--ollama URL] [--no-model]

The set lives in ``tests/interpret/``: ``requests_dev.yaml`` and ``requests_dev2.yaml`` are the
development part (the interpreter is tuned on them), ``requests_holdout.yaml`` the held-back
part, written from the format and the catalogue only and never used to tune (its misses are
written to the results file, not read to tune); the held-back figures are the measurement
(BENCHMARKS.md).

Configurations, each over the whole part:
1. ``tier1``: the deterministic reader alone (no model).
2. ``embedded``: the default on a fresh machine: tier 1, and tier 2 with the embedded
   SmolLM2-135M where tier 1 is not sure (``--no-model`` skips it).
3. ``ollama``: tier 2 on the Ollama profile's models, when a server answers at ``--ollama``
   (default http://localhost:11434); reported as unreachable otherwise.

Also timed: tier 1 alone per request (p50/p99), and ``runs.ask`` in-process from the
call to the restated reading of a tier-1 change (before any validation), on a copy of this
repository with default settings.

Targets (issue 15), held-back part on the embedded default: >= 97 % exact plans on parameter
and cascade requests, >= 95 % right intent on the rest, wrong-edit rate <= 0.5 %; tier 1
p99 < 5 ms; the restated reading < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sorte.interpret import Interpreter, build_catalogue, interpret  # noqa: E402
from sorte.interpret.evaluate import Report, Result, arun, load_set, run  # noqa: E402

RESULTS = REPO / "bench" / "results" / "interpret.json"
SETS = {"dev": ("requests_dev.yaml", "requests_dev2.yaml"), "holdout": ("requests_holdout.yaml",)}


def tier_of(r: Result) -> str:
    return f"tier{r.reading.tier}"


def summary(report: Report) -> dict:
    return {
        "overall": {k: round(v, 4) for k, v in report.summary().items()},
        "by_category": report.by(lambda r: r.item["category"]),
        "by_tier": report.by(tier_of),
        "misses": [
            {
                "id": r.item["id"],
                "text": r.item["text"],
                "expected": [r.item["intent"], r.item["action"], r.expected_ops],
                "got": [r.reading.intent, r.reading.action, r.ops, r.reading.tier],
            }
            for r in report.misses()
        ],
    }


def with_model(items: list[dict], catalogue, settings) -> Report:
    from sorte.interpret.constrained import ROLE
    from sorte.llm.build import build_llm
    from sorte.llm.embedded import only_embedded

    weak = only_embedded(settings.llm, ROLE)

    async def main() -> Report:
        llm = build_llm(settings)
        try:
            return await arun(items, lambda text: interpret(text, catalogue, llm, weak_model=weak))
        finally:
            await llm.close()

    return asyncio.run(main())


def ollama_reachable(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/api/tags", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def reading_latency(repeats: int) -> dict:
    """How long until the trader sees the restated reading of a tier-1 change (before any
    validation), on a git copy of this repository with default settings: ``runs.ask``
    in-process, and ``sorte ask`` as a new process (interpreter start and imports included)."""
    from sorte.agent import runs
    from sorte.config import Settings

    class Stop(Exception):
        pass

    request = "aumenta o stop loss do momentum para 3%"
    work = Path(tempfile.mkdtemp(prefix="sorte-bench-interpret-"))
    try:
        repo = work / "repo"
        subprocess.run(["git", "clone", "-q", str(REPO), str(repo)], check=True)
        for folder in ("sorte", "commander", "guardian", "knowledge", "sandbox", "strategies"):  # uncommitted edits
            shutil.copytree(REPO / folder, repo / folder, dirs_exist_ok=True)
        in_process, cli = [], []
        text = ""
        for i in range(repeats):
            settings = Settings(data_dir=work / f"var{i}", strategies_dir=repo / "strategies")
            seen: dict[str, float] = {}

            def on_event(node: str, event: str, info: dict, seen=seen) -> None:
                if event == "reading":
                    seen["t"] = time.perf_counter()
                    raise Stop(info.get("text", ""))

            t0 = time.perf_counter()
            try:
                asyncio.run(runs.ask(settings, request, on_event=on_event))
            except Stop as stop:
                text = str(stop)
            in_process.append(seen["t"] - t0)
            cli.append(_cli_reading(repo, request))
        return {"in_process_s": _spread(in_process), "cli_s": _spread(cli), "reading": text}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cli_reading(repo: Path, request: str) -> float:
    """Seconds from starting ``sorte ask`` to its "Entendi:" line; the process is then stopped."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sorte.cli.main", "ask", request, "--no-input"],
        cwd=repo, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Entendi:" in line:
                return time.perf_counter() - t0
        raise RuntimeError("sorte ask ended without restating the request")
    finally:
        proc.kill()
        proc.wait()


def _spread(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"first": round(samples[0], 3), "median": round(ordered[len(ordered) // 2], 3),
            "max": round(ordered[-1], 3), "n": len(samples)}  # fmt: skip


def print_report(name: str, data: dict) -> None:
    o = data["overall"]
    print(
        f"{name:10s} n={o['requests']:<4} exact plans {o['exact_plan']:.1%}  intent (rest) {o['intent_rest']:.1%}  "
        f"wrong edits {o['wrong_edit']:.2%}  language {o['language']:.1%}  "
        f"p50 {o['p50_ms']:.2f} ms  p99 {o['p99_ms']:.2f} ms"
    )
    for tier, s in data["by_tier"].items():
        print(
            f"    {tier}: n={s['n']} exact {s['exact']:.1%} intent {s['intent']:.1%} wrong edits {s['wrong_edit']:.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["holdout", "dev", "both"], default="holdout")
    parser.add_argument("--ollama", default=os.environ.get("OLLAMA_HOST", "http://localhost:11434"))
    parser.add_argument("--no-model", action="store_true", help="tier 1 only (no embedded model run)")
    parser.add_argument("--repeats", type=int, default=5, help="runs.ask runs for the reading latency")
    args = parser.parse_args()

    from sorte.config import LLMSettings, ProviderSettings, Settings

    catalogue = build_catalogue(REPO)
    parts = ["dev", "holdout"] if args.part == "both" else [args.part]
    out: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "parts": {}}
    for part in parts:
        items = [item for name in SETS[part] for item in load_set(REPO / "tests" / "interpret" / name)]
        results: dict = {}
        results["tier1"] = summary(run(items, Interpreter(catalogue).read))
        print(f"\n== {part} ({len(items)} requests)")
        print_report("tier1", results["tier1"])
        if not args.no_model:
            tmp = Path(tempfile.mkdtemp(prefix="sorte-bench-llm-"))
            results["embedded"] = summary(with_model(items, catalogue, Settings(data_dir=tmp)))
            print_report("embedded", results["embedded"])
            if ollama_reachable(args.ollama):
                providers = LLMSettings().providers | {"ollama": ProviderSettings(kind="ollama", base_url=args.ollama)}
                ollama = Settings(data_dir=tmp, llm=LLMSettings(profile="ollama", providers=providers))
                results["ollama"] = summary(with_model(items, catalogue, ollama))
                print_report("ollama", results["ollama"])
            else:
                results["ollama"] = f"not reachable at {args.ollama}"
                print(f"ollama     not reachable at {args.ollama}: skipped")
            shutil.rmtree(tmp, ignore_errors=True)
        out["parts"][part] = results
    latency = reading_latency(args.repeats)
    out["reading_latency"] = latency
    for key, label in (("in_process_s", "runs.ask"), ("cli_s", "sorte ask (new process)")):
        got = latency[key]
        print(f"{label} → restated reading: median {got['median']} s, max {got['max']} s, first {got['first']} s")
    print(f"reading: {latency['reading']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"results: {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
