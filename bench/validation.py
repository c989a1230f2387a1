"""Wall time of the guardian's full validation of a one-function change, cold and warm, and the
time to reject a candidate whose tests fail.

    .venv/bin/python bench/validation.py [--runs 3] [--sandbox docker]

A throw-away git repository holds this project's files; two candidate branches change one
function of ``strategies/momentum.py``:

* ``one-function``: ``lookback`` returns one bar more (a harmless change: every gate runs);
* ``tests-fail``: ``decide`` gives no reasons, so the strategy contract suite fails (the
  backtest still runs: the tests gate is what rejects it).

Cold: the offline sandbox image is removed and the data dir is empty (no cached baseline
backtests). Warm: the same validation again (image present, baseline cached), ``--runs``
times. Reject: ``tests-fail`` with fail fast (the default), warm, ``--runs`` times. Each
gate's own time comes from the verdict. Anchors measured in the same run, on the host
without a sandbox: pytest on ``tests/strategies`` and Semgrep on the changed file, the two
tools the slowest gates wrap. Results go to ``bench/results/validation.json``.
Targets (issue 5): full validation under 30 s, rejection under 10 s, on 2 cores.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the test suite's copy-of-this-project helper

from project_repo import copy_project, git  # noqa: E402

from guardian.gates.security import semgrep_command  # noqa: E402
from guardian.gates.tests_gate import tests_command  # noqa: E402
from guardian.validate import validate  # noqa: E402
from sorte.config import GitSettings, GuardianSettings, Settings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "validation.json"
MOMENTUM = "strategies/momentum.py"
CHANGES = {
    "one-function": ("    return max(p.fast, p.slow) + 1\n", "    return max(p.fast, p.slow) + 2\n"),
    "tests-fail": ("    return score, side, reason\n", "    return score, side, np.full(side.shape, '')\n"),
}
TARGETS = {"full": 30.0, "reject": 10.0}


def make_repo(root: Path) -> Path:
    copy_project(root)
    for name, (old, new) in CHANGES.items():
        git(root, "checkout", "-q", "-b", name, "main")
        text = (root / MOMENTUM).read_text()
        assert text.count(old) == 1, (name, old)
        (root / MOMENTUM).write_text(text.replace(old, new))
        git(root, "commit", "-q", "-am", name)
        git(root, "checkout", "-q", "main")
    return root


def run_once(settings: Settings, branch: str) -> dict:
    t0 = time.perf_counter()
    verdict = validate(settings, branch)
    wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 3),
        "overall": verdict.overall,
        "gates": {g.gate: {"status": g.status, "s": g.duration_s} for g in verdict.gates},
    }


def anchors(repo: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in {
            "pytest tests/strategies (host)": tests_command(["tests/strategies"]),
            "semgrep one file (host)": semgrep_command([MOMENTUM], repo / "guardian/rules/sorte.yml"),
        }.items():
            argv = [a.replace("{out}", tmp) for a in cmd]
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=repo, capture_output=True, check=False)
            out[name] = round(time.perf_counter() - t0, 3)
    return out


def remove_image() -> None:
    from sandbox import OFFLINE_IMAGE
    from sandbox.docker_backend import docker_client

    client = docker_client()
    try:
        client.images.remove(OFFLINE_IMAGE, force=True)
    except Exception:  # noqa: BLE001 - not there yet
        pass
    finally:
        client.close()


def settings_for(repo: Path, data: Path, sandbox: str) -> Settings:
    return Settings(data_dir=data, git=GitSettings(repo_root=repo), guardian=GuardianSettings(), sandbox=sandbox)


def table(rows: list[tuple[str, dict]]) -> str:
    gates = ["integrity", "security", "tests", "benchmark"]
    lines = [f"{'run':<22}{'verdict':<14}{'wall s':>8}" + "".join(f"{g:>11}" for g in gates)]
    for label, r in rows:
        cells = "".join(
            f"{r['gates'][g]['s']:>8.1f}{r['gates'][g]['status'][:3]:>3}" if g in r["gates"] else f"{'-':>11}"
            for g in gates
        )
        lines.append(f"{label:<22}{r['overall']:<14}{r['wall_s']:>8.1f}{cells}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sandbox", default="docker", choices=["docker", "local"])
    args = parser.parse_args()
    os.environ.setdefault("SORTE_LOG_LEVEL", "warning")
    from sorte.logging import setup_logging

    setup_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="sorte-bench-validation-") as tmp:
        repo = make_repo(Path(tmp) / "repo")
        data = Path(tmp) / "var"
        settings = settings_for(repo, data, args.sandbox)
        if args.sandbox == "docker":
            remove_image()
        rows: list[tuple[str, dict]] = [("cold one-function", run_once(settings, "one-function"))]
        rows += [(f"warm one-function #{i + 1}", run_once(settings, "one-function")) for i in range(args.runs)]
        rows += [(f"reject tests-fail #{i + 1}", run_once(settings, "tests-fail")) for i in range(args.runs)]
        anchor = anchors(repo)
    warm = [r["wall_s"] for label, r in rows if label.startswith("warm")]
    reject = [r["wall_s"] for label, r in rows if label.startswith("reject")]
    summary = {
        "cold_s": rows[0][1]["wall_s"],
        "warm_median_s": statistics.median(warm),
        "reject_median_s": statistics.median(reject),
        "anchors_s": anchor,
        "warm_over_host_pytest": round(statistics.median(warm) / anchor["pytest tests/strategies (host)"], 2),
        "reject_over_host_pytest": round(statistics.median(reject) / anchor["pytest tests/strategies (host)"], 2),
        "targets_s": TARGETS,
    }
    print(table(rows))
    print()
    for k, v in summary.items():
        print(f"{k:<26}{v}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "validation",
                "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "sandbox": args.sandbox,
                    "loadavg": os.getloadavg(),
                },
                "summary": summary,
                "runs": [{"label": label, **r} for label, r in rows],
            },
            indent=2,
        )
    )
    ok = summary["warm_median_s"] < TARGETS["full"] and summary["reject_median_s"] < TARGETS["reject"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
