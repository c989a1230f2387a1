"""Security gate: Bandit (JSON), Semgrep with ``guardian/rules/sorte.yml`` and a secret scan of the diff.

Bandit and Semgrep run through the ``runner`` (the sandbox in production), each once over
all changed Python files; Semgrep runs offline with the local rule file only. The secret
scan reads the diff text and never echoes the secret it found.
"""

from __future__ import annotations

import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from guardian.gates import OUT, Runner, RunResult, read_output
from guardian.verdict import Finding, GateResult, GateStatus, Severity

GATE = "security"
RULES = Path(__file__).resolve().parent.parent / "rules" / "sorte.yml"
BIN = Path(sys.executable).parent

# semgrep-core reserves far more address space than it uses: 1 GiB kills it.
DEFAULT_LIMITS: dict[str, Any] = {"timeout_s": 180, "memory_bytes": 4 << 30}

_BANDIT_SEVERITY: dict[str, Severity] = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high"}
_SEMGREP_SEVERITY: dict[str, Severity] = {"INFO": "low", "WARNING": "medium", "ERROR": "high"}

# (rule, pattern): each pattern's match is reported by rule and line, never by value.
SECRET_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("openai-key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("telegram-bot-token", re.compile(r"\b\d{8,10}:AA[A-Za-z0-9_\-]{32,}")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    (
        "generic-secret-assignment",
        re.compile(
            r"(?i)\b[a-z0-9_]*(?:api_?key|secret|token|passw(?:or)?d|access_?key)[a-z0-9_]*\s*[:=]\s*"
            r"[\"'][A-Za-z0-9_\-+/=.]{16,}[\"']"
        ),
    ),
]


def scan_diff_for_secrets(diff: str) -> list[Finding]:
    """Secrets on the added lines of a unified diff (or of plain text). Values are never echoed."""
    findings: list[Finding] = []
    file, line_no = "", 0
    is_diff = diff.startswith(("diff --git", "--- ", "+++ ")) or "\n+++ " in diff
    for raw in diff.splitlines():
        if is_diff:
            if raw.startswith("+++ "):
                file = raw[4:].strip()
                file = file[2:] if file.startswith("b/") else ("" if file == "/dev/null" else file)
                continue
            if raw.startswith("@@"):
                m = re.search(r"\+(\d+)", raw)
                line_no = int(m.group(1)) - 1 if m else 0
                continue
            if raw.startswith("-") or raw.startswith("diff ") or raw.startswith("index "):
                continue
            line_no += 1
            if not raw.startswith("+"):
                continue
            text = raw[1:]
        else:
            line_no += 1
            text = raw
        for rule, pattern in SECRET_PATTERNS:
            if pattern.search(text):
                findings.append(
                    Finding(
                        gate=GATE,
                        rule=f"secret-{rule}",
                        file=file,
                        line=line_no or None,
                        message=f"possible {rule.replace('-', ' ')} added (value redacted)",
                        severity="critical",
                    )
                )
                break
    return findings


def bandit_command(files: list[str]) -> list[str]:
    return [sys.executable, "-m", "bandit", "-q", "-f", "json", "-o", f"{OUT}/bandit.json", *files]


def semgrep_command(files: list[str], rules: Path = RULES) -> list[str]:
    return [
        "env",
        "SEMGREP_ENABLE_VERSION_CHECK=0",
        "SEMGREP_SEND_METRICS=off",
        str(BIN / "semgrep"),
        "scan",
        "--config",
        str(rules),
        "--metrics=off",
        "--disable-version-check",
        "--json",
        "--quiet",
        "--output",
        f"{OUT}/semgrep.json",
        *files,
    ]


def parse_bandit(report: bytes | str) -> tuple[list[Finding], list[str]]:
    data = json.loads(report)
    findings = [
        Finding(
            gate=GATE,
            rule=f"bandit-{r.get('test_id', '?')}",
            file=_rel(r.get("filename", "")),
            line=r.get("line_number"),
            message=f"{r.get('test_name', '')}: {r.get('issue_text', '')}".strip(": "),
            severity=_BANDIT_SEVERITY.get(str(r.get("issue_severity", "")).upper(), "medium"),
        )
        for r in data.get("results", [])
    ]
    errors = [f"{e.get('filename', '')}: {e.get('reason', '')}" for e in data.get("errors", [])]
    return findings, errors


def parse_semgrep(report: bytes | str) -> tuple[list[Finding], list[str]]:
    data = json.loads(report)
    findings = [
        Finding(
            gate=GATE,
            rule=str(r.get("check_id", "?")).rsplit(".", 1)[-1],
            file=_rel(r.get("path", "")),
            line=(r.get("start") or {}).get("line"),
            message=str((r.get("extra") or {}).get("message", "")),
            severity=_SEMGREP_SEVERITY.get(str((r.get("extra") or {}).get("severity", "")).upper(), "medium"),
        )
        for r in data.get("results", [])
    ]
    errors = [str(e.get("message", e))[:300] for e in data.get("errors", []) if e.get("level", "error") == "error"]
    return findings, errors


def _rel(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _tool(
    name: str, runner: Runner, command: list[str], worktree: Path, limits: Any, report: str, parse: Any
) -> tuple[GateStatus | None, list[Finding], str]:
    """(problem status or None, findings, note)."""
    result: RunResult = runner(command, worktree, limits)
    if result.timed_out:
        return "timeout", [], f"{name} timed out"
    data = read_output(result, report)
    if data is None:
        tail = (result.stderr or result.stdout or "").strip()[-300:]
        return "error", [], f"{name} wrote no report (exit {result.exit_code}): {tail}"
    try:
        findings, errors = parse(data)
    except (ValueError, TypeError, AttributeError) as exc:
        return "error", [], f"{name} report unreadable: {exc}"
    if errors:
        return "error", findings, f"{name} errors: {'; '.join(errors[:3])}"
    return None, findings, ""


def run_security_gate(
    runner: Runner,
    worktree: Path,
    changed_files: list[str],
    *,
    diff: str = "",
    rules: Path = RULES,
    limits: Any = None,
    bandit: bool = True,
    semgrep: bool = True,
    fail_on: frozenset[str] = frozenset({"medium", "high", "critical"}),
) -> GateResult:
    """Scan ``changed_files`` (paths relative to ``worktree``) and ``diff``.

    Bandit runs on the changed strategy files, Semgrep once on every changed Python file.
    A finding whose severity is in ``fail_on`` fails the gate; tool errors make it "error".
    """
    t0 = time.perf_counter()
    limits = limits if limits is not None else dict(DEFAULT_LIMITS)
    py_files = sorted({f for f in changed_files if f.endswith(".py") and (Path(worktree) / f).is_file()})
    strategy_files = [f for f in py_files if f.startswith("strategies/")]
    jobs: dict[str, tuple] = {}
    if bandit and strategy_files:
        jobs["bandit"] = (bandit_command(strategy_files), "bandit.json", parse_bandit)
    if semgrep and py_files:
        jobs["semgrep"] = (semgrep_command(py_files, rules), "semgrep.json", parse_semgrep)
    findings = scan_diff_for_secrets(diff) if diff else []
    problems: list[tuple[GateStatus, str]] = []
    timings: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {
            name: pool.submit(_timed, _tool, name, runner, cmd, worktree, limits, report, parse)
            for name, (cmd, report, parse) in jobs.items()
        }
        for name, fut in futures.items():
            (status, found, note), timings[name] = fut.result()
            findings.extend(found)
            if status is not None:
                problems.append((status, note))
    blocking = [f for f in findings if f.severity in fail_on]
    status: GateStatus
    if blocking:
        status = "fail"
    elif any(s == "timeout" for s, _ in problems):
        status = "timeout"
    elif problems:
        status = "error"
    else:
        status = "pass"
    summary = f"{len(blocking)} blocking of {len(findings)} findings in {len(py_files)} files"
    if problems:
        summary += "; " + "; ".join(note for _, note in problems)
    return GateResult(
        gate=GATE,
        status=status,
        summary=summary,
        duration_s=time.perf_counter() - t0,
        findings=findings,
        details={"files": py_files, "tool_seconds": timings},
    )


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
