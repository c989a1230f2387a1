"""Validation gates (tests, security, integrity, benchmark) and the Verdict they produce.

Public surface::

    from guardian import Verdict, GateResult, Finding, MetricRow
    from guardian import run_tests_gate, run_security_gate, run_integrity_gate, run_benchmark_gate

Gates that run tools take a ``runner`` shaped like ``sandbox.run`` (see ``guardian.gates``).
"""

from guardian.gates import LocalResult, Runner, RunResult, read_output, subprocess_runner
from guardian.gates.benchmark import (
    SideReport,
    Tolerances,
    compare_reports,
    demo_datasets,
    run_benchmark_gate,
    run_benchmark_gate_in,
    run_side,
)
from guardian.gates.integrity import run_integrity_gate
from guardian.gates.security import (
    RULES,
    check_policy,
    run_security_gate,
    scan_diff_for_secrets,
    scan_texts_for_secrets,
)
from guardian.gates.tests_gate import parse_junit, run_tests_gate
from guardian.stats import PairedTest, paired_bootstrap
from guardian.verdict import Finding, GateResult, GateStatus, MetricRow, Outcome, Overall, Verdict, overall_of

__all__ = [
    "RULES",
    "Finding",
    "GateResult",
    "GateStatus",
    "LocalResult",
    "MetricRow",
    "Outcome",
    "Overall",
    "PairedTest",
    "RunResult",
    "SideReport",
    "Runner",
    "Tolerances",
    "Verdict",
    "check_policy",
    "compare_reports",
    "demo_datasets",
    "overall_of",
    "paired_bootstrap",
    "parse_junit",
    "read_output",
    "run_benchmark_gate",
    "run_benchmark_gate_in",
    "run_integrity_gate",
    "run_security_gate",
    "run_side",
    "run_tests_gate",
    "scan_diff_for_secrets",
    "scan_texts_for_secrets",
    "subprocess_runner",
]
