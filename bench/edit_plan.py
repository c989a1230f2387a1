"""Time to apply a typical 3-operation edit plan on a run branch, commit included.

    .venv/bin/python bench/edit_plan.py [--runs 20]

A local clone of this repository (every tracked file, so the worktree checks out a tree of
the real size) gets one ``edit_on_branch`` per run, each with a fresh run id: open the run
(branch ``sorte/<run-id>-<slug>`` and its worktree), apply the plan with the LibCST editor
(set a strategy parameter, change a cascade stage's threshold, change MIN_CONFIDENCE; the
result parsed, policy-checked, and imported in the sandboxed validator, never in this process),
and make its one commit. One untimed run first (imports, caches, the validator's start), then
the median of ``--runs`` timed runs, with each phase timed too.
Results go to ``bench/results/edit_plan.json``. Target (issue 4): under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sorte.editing.result_check as result_check  # noqa: E402
from sorte.config import Settings  # noqa: E402
from sorte.editing import branches, gitops, run_worktrees, sandboxed  # noqa: E402
from sorte.editing.plan import EditPlan  # noqa: E402

RESULTS = REPO / "bench" / "results" / "edit_plan.json"
REQUEST = "aumenta o stop loss do momentum para 3%, filtro técnico 0.6, confiança mínima 0.8"
PLAN = {
    "summary": "Wider momentum stop loss, stricter technical filter and minimum confidence",
    "ops": [
        {"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03},
        {"op": "set_stage", "stage": "technical", "threshold": 0.6},
        {"op": "set_min_confidence", "value": 0.8},
    ],
}
TARGET_S = 1.0


def timed(phases: dict[str, list[float]], name: str, fn):
    """Wrap ``fn`` so that each call's duration is appended to ``phases[name]``."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name].append(time.perf_counter() - start)

    return wrapper


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    import git

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
        "gitpython": git.__version__,
        "loadavg": os.getloadavg(),
        "validator_isolation": sandboxed._VALIDATOR.isolation,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    plan = EditPlan.model_validate(PLAN)
    phases: dict[str, list[float]] = defaultdict(list)
    branches.run_worktrees.open_run = timed(phases, "open_run (branch + worktree)", run_worktrees.open_run)
    branches._apply = timed(phases, "apply_plan (LibCST + checks + write)", branches._apply)
    branches.gitops.commit_run = timed(phases, "commit", gitops.commit_run)
    result_check.run_checks = timed(phases, "  of which sandboxed import check", result_check.run_checks)
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True)
        files = len(subprocess.run(["git", "ls-files"], cwd=clone, capture_output=True, text=True).stdout.split())
        settings = Settings(strategies_dir=clone / "strategies", data_dir=Path(tmp) / "var")
        totals = []
        for i in range(args.runs + 1):
            start = time.perf_counter()
            out = branches.edit_on_branch(settings, plan, REQUEST, run_id=f"bench-{i}")
            totals.append(time.perf_counter() - start)
            assert out.commit and len(out.changed) == 2, out
        cold, totals = totals[0], totals[1:]
        phase_medians = {name: statistics.median(v[1:]) for name, v in phases.items()}
    result = {
        "runs": args.runs,
        "tracked_files": files,
        "median_s": round(statistics.median(totals), 4),
        "p90_s": round(sorted(totals)[int(0.9 * (len(totals) - 1))], 4),
        "min_s": round(min(totals), 4),
        "max_s": round(max(totals), 4),
        "first_run_s": round(cold, 4),
        "phase_median_s": {k: round(v, 4) for k, v in phase_medians.items()},
        "phase_first_run_s": {k: round(v[0], 4) for k, v in phases.items()},
        "target_s": TARGET_S,
        "meets_target": statistics.median(totals) < TARGET_S,
        "samples_s": [round(t, 4) for t in totals],
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"edit plan (3 ops) on a run branch, {args.runs} runs, repo of {files} files")
    ms = {k: result[k] * 1000 for k in ("median_s", "p90_s", "first_run_s")}
    print(f"  median {ms['median_s']:.0f} ms   p90 {ms['p90_s']:.0f} ms   first {ms['first_run_s']:.0f} ms")
    order = ["open_run", "apply_plan", "of which", "commit"]
    shown = sorted(phase_medians.items(), key=lambda kv: next(i for i, k in enumerate(order) if k in kv[0]))
    for name, value in shown:
        print(f"  {name:<40} {value * 1000:7.1f} ms   (first run {phases[name][0] * 1000:.0f} ms)")
    print(f"  target < {TARGET_S:g} s: {'met' if result['meets_target'] else 'MISSED'} -> {RESULTS}")


if __name__ == "__main__":
    main()
