"""Wall time of an agent run from the command to the verdict ready for approval, per node.

    .venv/bin/python bench/agent_run.py [--runs 3]

A throw-away git repository holds this project's files. Each run is ``sorte.agent.runs.ask``
with a request "aumenta o stop loss do momentum para N%" (N differs per run, so each one edits
and validates for real), read by the interpreter's tier 1 (the plan too: no model; the fake
provider stands by and is never asked): receive, interpret, recall
(the lesson store, all-MiniLM-L6-v2 in process), plan (the plan checked by a dry run of the
LibCST editor), edit (branch, worktree, commit), validate (the guardian, Docker sandbox),
approve (the interrupt: the run stops there, the clock too). The first run is cold (a new
data dir: lesson store and embedder loaded, baseline backtests computed); the next ones
reuse them. Node times come from the audit log. Anchor in the same run: the guardian alone
(``guardian.validate``) on the same kind of branch. Results go to
``bench/results/agent_run.json``. Target (issue 6): under 45 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the test suite's copy-of-this-project helper

from project_repo import copy_project, git  # noqa: E402

from sorte.agent import runs  # noqa: E402
from sorte.agent.journal import read_audit  # noqa: E402
from sorte.config import GitSettings, LLMSettings, ProviderSettings, RoleSettings, RoleTarget, Settings  # noqa: E402
from sorte.llm.client import LLM  # noqa: E402
from sorte.llm.providers.fake import FakeProvider  # noqa: E402

RESULTS = REPO / "bench" / "results" / "agent_run.json"
REQUEST = "aumenta o stop loss do momentum para {percent:g}%"
TARGET_S = 45.0


def plan_for(value: float) -> dict:
    return {
        "summary": f"Momentum stop loss {value:.3f}",
        "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": value}],
    }


def settings_for(repo: Path, data: Path) -> Settings:
    fake = RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")])
    return Settings(
        data_dir=data,
        strategies_dir=repo / "strategies",
        git=GitSettings(repo_root=repo),
        sandbox="docker",
        llm=LLMSettings(providers={"fake": ProviderSettings(kind="fake")}, roles={"standard": fake, "coder": fake}),
    )


def scripted(value: float):
    def answer(_model: str, messages: list[dict[str, str]]) -> str:
        return json.dumps(plan_for(value))  # only a coder plan would need it: a parameter change never asks

    return answer


def one_run(settings: Settings, value: float) -> dict:
    llm = LLM(settings.llm, None, {"fake": FakeProvider("fake", settings.llm.providers["fake"], scripted(value))})
    t0 = time.perf_counter()
    view = asyncio.run(runs.ask(settings, REQUEST.format(percent=round(value * 100, 3)), llm=llm))
    wall = time.perf_counter() - t0
    assert view.status == "awaiting_approval", view
    nodes: dict[str, float] = defaultdict(float)
    for row in read_audit(settings.data_dir, view.run_id):
        if row["event"] == "leave":
            nodes[row["node"]] += row["duration_s"]
    return {"wall_s": round(wall, 3), "verdict": view.verdict["overall"], "nodes_s": dict(nodes)}


def anchor(settings: Settings, branch: str) -> float:
    from guardian.validate import validate

    t0 = time.perf_counter()
    validate(settings, branch)
    return round(time.perf_counter() - t0, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from sorte.logging import setup_logging

    setup_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="sorte-bench-agent-") as tmp:
        repo = copy_project(Path(tmp) / "repo")
        settings = settings_for(repo, Path(tmp) / "var")
        # Each run asks for a different stop loss, so each one really edits and validates.
        runs = [one_run(settings, 0.021 + 0.001 * i) for i in range(args.runs + 1)]
        branch = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/sorte").split()[-1]
        guardian_alone = anchor(settings, branch)
    warm = [r["wall_s"] for r in runs[1:]]
    nodes = sorted({n for r in runs for n in r["nodes_s"]}, key=lambda n: -runs[-1]["nodes_s"].get(n, 0))
    print(f"{'run':<10}{'wall s':>8}  " + "".join(f"{n:>10}" for n in nodes))
    for i, r in enumerate(runs):
        label = "cold" if i == 0 else f"warm #{i}"
        print(f"{label:<10}{r['wall_s']:>8.1f}  " + "".join(f"{r['nodes_s'].get(n, 0):>10.2f}" for n in nodes))
    summary = {
        "cold_s": runs[0]["wall_s"],
        "warm_median_s": statistics.median(warm),
        "guardian_alone_s": guardian_alone,
        "warm_over_guardian": round(statistics.median(warm) / guardian_alone, 2),
        "target_s": TARGET_S,
    }
    print()
    for k, v in summary.items():
        print(f"{k:<22}{v}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "agent_run",
                "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "loadavg": os.getloadavg(),
                },
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0 if summary["warm_median_s"] < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
