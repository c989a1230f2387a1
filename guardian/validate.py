"""``sorte validate``: every gate on a candidate branch, in parallel, candidate code only in the sandbox.

Integrity reads the candidate's changes from git on the host, and the security gate's code
policy and secret scan read their text there (no candidate code runs); the tests (protected
suite and the candidate's own tests, apart), Bandit + Semgrep and both sides of the benchmark
each run in their own sandboxed command over trees built by ``guardian.workspace``: the
baseline's files with only the candidate's strategies laid over them. The baseline's
backtests are cached per commit, so a second validation against the same deployed commit only
backtests the candidate. The verdict is saved under ``<data_dir>/guardian/verdicts/``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from guardian.gates import Runner
from guardian.gates.benchmark import GATE as BENCHMARK
from guardian.gates.benchmark import (
    SideReport,
    Tolerances,
    cancel_sides,
    compare_reports,
    forget_sides,
    run_side_in,
)
from guardian.gates.integrity import GATE as INTEGRITY
from guardian.gates.integrity import run_integrity_gate
from guardian.gates.security import GATE as SECURITY
from guardian.gates.security import run_security_gate
from guardian.gates.tests_gate import GATE as TESTS
from guardian.gates.tests_gate import run_tests_gate
from guardian.verdict import GateResult, Verdict
from guardian.workspace import (
    SCAN_RULES,
    SCAN_TREE,
    GuardianError,
    Workspace,
    open_repository,
    prepare,
    resolve_baseline,
    resolve_candidate,
)
from sorte import paths
from sorte.config import Settings

log = structlog.get_logger(__name__)

GATES = (INTEGRITY, SECURITY, TESTS, BENCHMARK)
MIB = 1024 * 1024
#: The guardian's own rules as the security gate's sandbox sees them (copied into the scan tree).
TREE_RULES = Path(SCAN_RULES)

#: progress(gate, "start" | "done", result or None)
Progress = Callable[[str, str, GateResult | None], None]


def _quiet(_gate: str, _state: str, _result: GateResult | None) -> None:
    return None


def sandbox_backend(settings: Settings) -> Any:
    """The configured sandbox backend (``auto`` warns when it falls back to local)."""
    from sandbox import SandboxUnavailable, get_backend

    try:
        return get_backend(settings.sandbox)
    except SandboxUnavailable as exc:
        raise GuardianError(str(exc)) from None


def _limits(settings: Settings, gate: str) -> dict[str, Any]:
    g = settings.guardian
    timeout = {TESTS: g.tests_timeout_s, SECURITY: g.security_timeout_s}.get(gate, g.benchmark_timeout_s)
    memory = g.security_memory_mb if gate == SECURITY else g.memory_mb
    return {"timeout_s": timeout, "memory_bytes": memory * MIB, "cpus": g.cpus, "pids": g.pids}


def _cache_file(settings: Settings, sha: str) -> Path:
    key = hashlib.sha256(
        (sha + settings.broker.model_dump_json() + settings.risk.model_dump_json()).encode()
    ).hexdigest()[:16]
    return Path(settings.data_dir) / "guardian" / "baseline" / f"{sha[:12]}-{key}.json"


def _baseline_report(settings: Settings, runner: Runner, ws: Workspace, sha: str) -> SideReport | GateResult:
    path = _cache_file(settings, sha)
    if settings.guardian.cache_baseline and path.is_file():
        try:
            return SideReport.model_validate_json(path.read_text())
        except ValueError:
            path.unlink(missing_ok=True)  # a torn or stale cache entry: recompute it
    report = run_side_in(runner, ws.baseline, limits=_limits(settings, BENCHMARK))
    if isinstance(report, SideReport) and settings.guardian.cache_baseline:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(report.model_dump_json())
        tmp.replace(path)
    return report


def _tolerances(settings: Settings) -> Tolerances:
    try:
        return Tolerances.model_validate(settings.guardian.tolerances)
    except ValidationError as exc:
        fields = ", ".join(Tolerances.model_fields)
        raise GuardianError(f"guardian.tolerances is invalid ({exc.errors()[0]['msg']}); fields: {fields}") from None


def _benchmark(
    settings: Settings, runner: Runner, ws: Workspace, baseline_sha: str, tolerances: Tolerances
) -> GateResult:
    with ThreadPoolExecutor(max_workers=1) as pool:
        base_f = pool.submit(_baseline_report, settings, runner, ws, baseline_sha)
        cand = run_side_in(runner, ws.candidate, limits=_limits(settings, BENCHMARK))
        base = base_f.result()
    if isinstance(cand, GateResult):
        return cand
    if isinstance(base, GateResult):
        return GateResult(gate=BENCHMARK, status="error", summary=f"baseline did not run: {base.summary}")
    try:
        return compare_reports(base, cand, tolerances)
    except ValueError as exc:
        return GateResult(gate=BENCHMARK, status="error", summary=str(exc)[:500])


def _gate_jobs(
    settings: Settings, runner: Runner, ws: Workspace, baseline_sha: str, tolerances: Tolerances
) -> dict[str, Callable[[], GateResult]]:
    g = settings.guardian
    cs = ws.change_set
    return {
        INTEGRITY: lambda: run_integrity_gate(cs.changes),
        SECURITY: lambda: run_security_gate(
            runner,
            ws.scan,
            ws.scanned,
            subdir=SCAN_TREE,
            rules=TREE_RULES,
            texts=cs.texts(),
            sources=cs.sources(),
            unscanned=cs.unscanned(),
            limits=_limits(settings, SECURITY),
        ),
        TESTS: lambda: run_tests_gate(
            runner,
            ws.candidate,
            paths=g.test_paths,
            extra_args=g.test_args,
            limits=_limits(settings, TESTS),
            candidate_tree=ws.candidate_tests,
            candidate_tests=ws.added_tests,
        ),
        BENCHMARK: lambda: _benchmark(settings, runner, ws, baseline_sha, tolerances),
    }


def _run_gate(name: str, job: Callable[[], GateResult], progress: Progress, stopped: _Stop) -> GateResult:
    progress(name, "start", None)
    t0 = time.perf_counter()
    try:
        result = job()
    except Exception as exc:  # noqa: BLE001 - a gate that crashes is an error, never a pass
        log.exception("guardian.gate_crashed", gate=name)
        result = GateResult(gate=name, status="error", summary=f"{type(exc).__name__}: {exc}"[:500])
    if stopped.by and stopped.by != name:
        result = GateResult(gate=name, status="skipped", summary=f"stopped: {stopped.by} failed first")
    result.duration_s = round(time.perf_counter() - t0, 3)
    if not stopped.by and result.status in ("fail", "timeout"):
        stopped.stop(name)
    log.info("guardian.gate", gate=name, status=result.status, duration_s=result.duration_s, summary=result.summary)
    progress(name, "done", result)
    return result


def _canceller(backend: Any) -> Callable[[], None]:
    """Stop this validation's sandbox runs and the strategy workers of its benchmark sides."""

    def cancel() -> None:
        backend.cancel_all()
        cancel_sides(backend)

    return cancel


class _Stop:
    """Fail fast: the first gate that fails the candidate cancels the sandbox runs of the others."""

    def __init__(self, cancel: Callable[[], None] | None, enabled: bool) -> None:
        self.cancel = cancel if enabled else None
        self.by = ""  # the gate that failed first, once the others were cancelled
        self.lock = threading.Lock()

    def stop(self, gate: str) -> None:
        with self.lock:
            if self.by or self.cancel is None:
                return
            self.by = gate
        log.info("guardian.fail_fast", failed=gate)
        self.cancel()


def validate(
    settings: Settings,
    branch: str,
    *,
    baseline: str | None = None,
    runner: Runner | None = None,
    progress: Progress = _quiet,
) -> Verdict:
    """Validate ``branch`` (run id, branch or commit) against ``baseline`` (default: guardian.baseline,
    else the base branch). Raises GuardianError when the refs do not resolve; gate problems
    become gate statuses in the verdict."""
    t0 = time.perf_counter()
    tolerances = _tolerances(settings)
    repo = open_repository(paths.repo_root(settings))
    cand_ref = resolve_candidate(repo, branch)
    base_ref = resolve_baseline(repo, baseline or settings.guardian.baseline or settings.git.base_branch)
    cancel = None
    if runner is None:
        backend = sandbox_backend(settings)
        runner, cancel = backend.run, _canceller(backend)
    stopped = _Stop(cancel, settings.guardian.fail_fast)
    ws = prepare(repo, cand_ref, base_ref)
    log.info("guardian.validate", candidate=cand_ref.short(), baseline=base_ref.short(), changed=len(ws.changed))
    try:
        jobs = _gate_jobs(settings, runner, ws, base_ref.sha, tolerances)
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = [pool.submit(_run_gate, name, job, progress, stopped) for name, job in jobs.items()]
            try:
                gates = [f.result() for f in futures]
            except BaseException:  # Ctrl-C: stop the containers instead of waiting for their timeouts
                if cancel is not None:
                    cancel()
                raise
    finally:
        ws.remove()
        forget_sides(getattr(runner, "__self__", runner))
    verdict = Verdict(
        candidate=cand_ref.short(),
        baseline=base_ref.short(),
        gates=gates,
        duration_s=round(time.perf_counter() - t0, 3),
    )
    save(settings, verdict, cand_ref.sha)
    log.info("guardian.verdict", overall=verdict.overall, duration_s=verdict.duration_s, reasons=verdict.reasons())
    return verdict


def save(settings: Settings, verdict: Verdict, sha: str) -> Path:
    """Write the verdict as JSON (atomically) where the status page and the agent read it."""
    folder = Path(settings.data_dir) / "guardian" / "verdicts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha[:12]}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(verdict.to_json())
    tmp.replace(path)
    return path
