"""Security gate: the editor's code policy, Bandit, Semgrep and a secret scan over every changed file.

* The editor's code policy (``sorte.editing.code_policy.check_code``: pure AST, nothing runs) judges
  every changed ``strategies/*.py`` and new ``tests/strategies/test_*.py`` on the host.
* Bandit (every changed ``.py`` file) and Semgrep (every changed file, the guardian's own
  rules, offline) run through the ``runner`` (the sandbox in production), once each, with
  ``# nosec`` / ``# nosemgrep`` comments ignored: the candidate cannot silence them.
* The secret scan reads the lines each changed text file adds (dotfiles, YAML, anything),
  and never echoes the secret it found.
* A changed file some scanner could not see (too large, an unwritable name) is a finding too.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from guardian.gates import OUT, Runner, RunResult, read_output
from guardian.verdict import Finding, GateResult, GateStatus, Severity
from sorte.editing.code_policy import check_code
from sorte.editing.policy import PolicyError

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
            # Bounded repeats, no leading identifier: a candidate's 1 MiB line cannot make this
            # backtrack quadratically on the host ("tokentoken..." took minutes unbounded).
            r"(?i)(?:api_?key|secret|token|passw(?:or)?d|access_?key)[a-z0-9_]{0,64}\s{0,8}[:=]\s{0,8}"
            r"[\"'][A-Za-z0-9_\-+/=.]{16,512}[\"']"
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
                findings.append(_secret(rule, file, line_no or None))
                break
    return findings


def scan_texts_for_secrets(texts: Mapping[str, tuple[str | None, str]]) -> list[Finding]:
    """Secrets on the lines each file adds: ``texts`` maps a path to (old text or None, new text).

    A line counts as added when the old text has fewer copies of it, so a secret that was
    already there is not reported again, and no diff (attributes, drivers) is involved."""
    findings: list[Finding] = []
    for path, (old, new) in texts.items():
        before = Counter(old.splitlines()) if old is not None else Counter()
        for line_no, line in enumerate(new.splitlines(), start=1):
            if before[line] > 0:
                before[line] -= 1
                continue
            rule = next((rule for rule, pattern in SECRET_PATTERNS if pattern.search(line)), None)
            if rule is not None:
                findings.append(_secret(rule, path, line_no))
    return findings


def _secret(rule: str, path: str, line: int | None) -> Finding:
    return Finding(
        gate=GATE,
        rule=f"secret-{rule}",
        file=path,
        line=line,
        message=f"possible {rule.replace('-', ' ')} added (value redacted)",
        severity="critical",
    )


def check_policy(sources: Mapping[str, str]) -> list[Finding]:
    """The editor's code policy on each source (path -> text): one critical finding per refused file."""
    findings: list[Finding] = []
    for path, source in sources.items():
        try:
            check_code(source, path)
        except PolicyError as exc:
            findings.append(_policy_finding(path, str(exc)))
        except (RecursionError, MemoryError, ValueError) as exc:  # a hostile source can exhaust the parser
            findings.append(_policy_finding(path, f"{path} could not be checked: {type(exc).__name__}"))
    return findings


def _policy_finding(path: str, message: str) -> Finding:
    # The policy names the line as "path:12: ..." or "path line 12: ...".
    match = re.search(r"\bline (\d+)", message) or re.match(re.escape(path) + r":(\d+):", message)
    return Finding(
        gate=GATE,
        rule="code-policy",
        file=path,
        line=int(match.group(1)) if match else None,
        message=message[:500],
        severity="critical",
    )


def bandit_command(files: list[str]) -> list[str]:
    # --ignore-nosec: a "# nosec" comment is the candidate's, so it silences nothing.
    return [sys.executable, "-m", "bandit", "-q", "--ignore-nosec", "-f", "json", "-o", f"{OUT}/bandit.json", *files]


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
        "--disable-nosem",  # a "# nosemgrep" comment is the candidate's, so it silences nothing
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
    subdir: str = "",
    texts: Mapping[str, tuple[str | None, str]] | None = None,
    sources: Mapping[str, str] | None = None,
    unscanned: Mapping[str, str] | None = None,
) -> GateResult:
    """Scan the changed files (see the module doc).

    ``changed_files`` are relative to ``worktree/subdir`` (the folder holding the changed files;
    ``rules`` is relative to ``worktree`` or absolute). ``texts`` feed the secret scan and
    ``diff`` (a unified diff) is scanned too; ``sources`` go through the code policy;
    ``unscanned`` names changed files no tool could see, and why. A finding whose severity is
    in ``fail_on`` fails the gate; tool errors make it "error".
    """
    t0 = time.perf_counter()
    limits = limits if limits is not None else dict(DEFAULT_LIMITS)
    folder = Path(worktree) / subdir if subdir else Path(worktree)
    files = sorted({f for f in changed_files if (folder / f).is_file()})
    targets = [f"{subdir}/{f}" if subdir else f for f in files]
    jobs = _tool_jobs(targets, rules, bandit, semgrep)
    findings = scan_diff_for_secrets(diff) if diff else []
    findings += scan_texts_for_secrets(texts or {})
    findings += check_policy(sources or {})
    findings += [_unscanned(path, why) for path, why in (unscanned or {}).items()]
    problems: list[tuple[GateStatus, str]] = []
    timings: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {
            name: pool.submit(_timed, _tool, name, runner, cmd, worktree, limits, report, parse)
            for name, (cmd, report, parse) in jobs.items()
        }
        for name, fut in futures.items():
            (status, found, note), timings[name] = fut.result()
            findings.extend(_strip(f, subdir) for f in found)
            if status is not None:
                problems.append((status, note))
    return _result(findings, problems, fail_on, files, timings, time.perf_counter() - t0)


def _tool_jobs(targets: list[str], rules: Path, bandit: bool, semgrep: bool) -> dict[str, tuple]:
    jobs: dict[str, tuple] = {}
    py_files = [f for f in targets if f.endswith(".py")]
    if bandit and py_files:
        jobs["bandit"] = (bandit_command(py_files), "bandit.json", parse_bandit)
    if semgrep and targets:
        # Every changed file: each rule picks the languages it applies to.
        jobs["semgrep"] = (semgrep_command(targets, rules), "semgrep.json", parse_semgrep)
    return jobs


def _result(
    findings: list[Finding],
    problems: list[tuple[GateStatus, str]],
    fail_on: frozenset[str],
    files: list[str],
    timings: dict[str, float],
    elapsed: float,
) -> GateResult:
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
    summary = f"{len(blocking)} blocking of {len(findings)} findings in {len(files)} files"
    if problems:
        summary += "; " + "; ".join(note for _, note in problems)
    return GateResult(
        gate=GATE,
        status=status,
        summary=summary,
        duration_s=elapsed,
        findings=findings,
        details={"files": files, "tool_seconds": timings},
    )


def _strip(finding: Finding, subdir: str) -> Finding:
    prefix = f"{subdir}/" if subdir else ""
    if prefix and finding.file.startswith(prefix):
        return finding.model_copy(update={"file": finding.file[len(prefix) :]})
    return finding


def _unscanned(path: str, why: str) -> Finding:
    return Finding(gate=GATE, rule="unscanned-file", file=path, message=f"not scanned: {why}", severity="critical")


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0
