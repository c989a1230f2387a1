"""The guardian's verdict: every gate's status, its findings and the metric table.

Rendered three ways: a short text for Telegram, markdown for a PR body and JSON for the
status page. Overall: any gate "fail" or "timeout" -> fail (a candidate that does not finish
within its limits is rejected); all gates "pass" -> pass; otherwise (inconclusive, error, or
no gate at all) -> inconclusive, which never counts as a pass. "skipped" marks a gate stopped
because another gate had already failed the candidate (fail fast).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

GateStatus = Literal["pass", "fail", "inconclusive", "error", "timeout", "skipped"]
Overall = Literal["pass", "fail", "inconclusive"]
Outcome = Literal["better", "same", "worse", "inconclusive"]
Severity = Literal["info", "low", "medium", "high", "critical"]

_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "error": "⚠️", "timeout": "⏱️", "skipped": "⏭️"}


class Finding(BaseModel):
    gate: str
    rule: str
    file: str = ""
    line: int | None = None
    message: str
    severity: Severity = "medium"

    def where(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


class MetricRow(BaseModel):
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    outcome: Outcome
    note: str = ""


class GateResult(BaseModel):
    gate: str
    status: GateStatus
    summary: str = ""
    duration_s: float = 0.0
    findings: list[Finding] = Field(default_factory=list)
    metrics: list[MetricRow] = Field(default_factory=list)
    details: dict = Field(default_factory=dict)


def overall_of(gates: list[GateResult]) -> Overall:
    if any(g.status in ("fail", "timeout") for g in gates):
        return "fail"
    if gates and all(g.status == "pass" for g in gates):
        return "pass"
    return "inconclusive"


class Verdict(BaseModel):
    candidate: str = ""
    baseline: str = ""
    gates: list[GateResult] = Field(default_factory=list)
    duration_s: float = 0.0

    @property
    def overall(self) -> Overall:
        return overall_of(self.gates)

    @property
    def findings(self) -> list[Finding]:
        return [f for g in self.gates for f in g.findings]

    @property
    def metrics(self) -> list[MetricRow]:
        return [m for g in self.gates for m in g.metrics]

    def gate(self, name: str) -> GateResult | None:
        return next((g for g in self.gates if g.gate == name), None)

    def reasons(self) -> list[str]:
        """One line per gate that did not pass."""
        return [
            f"{g.gate}: {g.status}" + (f" ({g.summary})" if g.summary else "") for g in self.gates if g.status != "pass"
        ]

    # --- renderings -------------------------------------------------------------------
    def to_text(self, max_findings: int = 5) -> str:
        """Short plain text for a Telegram message."""
        head = f"{_ICON[self.overall]} Verdict: {self.overall.upper()}"
        if self.candidate:
            head += f" — {self.candidate}" + (f" vs {self.baseline}" if self.baseline else "")
        lines = [head]
        for g in self.gates:
            lines.append(
                f"{_ICON[g.status]} {g.gate}: {g.status} ({g.duration_s:.1f}s)" + (f" {g.summary}" if g.summary else "")
            )
        for m in self.metrics:
            if m.outcome != "same":
                lines.append(f"  {m.metric}: {_num(m.baseline)} → {_num(m.candidate)} ({m.outcome})")
        shown = self.findings[:max_findings]
        for f in shown:
            where = f" {f.where()}" if f.where() else ""
            lines.append(f"  • [{f.gate}/{f.rule}]{where}: {f.message}")
        if len(self.findings) > len(shown):
            lines.append(f"  … and {len(self.findings) - len(shown)} more findings")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown for a pull-request body."""
        out = [f"## Guardian verdict: {_ICON[self.overall]} **{self.overall}**", ""]
        if self.candidate:
            out += [f"Candidate `{self.candidate}`" + (f" vs baseline `{self.baseline}`" if self.baseline else ""), ""]
        out += ["| Gate | Status | Time | Summary |", "|---|---|---|---|"]
        for g in self.gates:
            out.append(f"| {g.gate} | {_ICON[g.status]} {g.status} | {g.duration_s:.1f}s | {_md(g.summary)} |")
        if self.metrics:
            out += ["", "### Metrics", "", "| Metric | Baseline | Candidate | Δ | Outcome |", "|---|---|---|---|---|"]
            for m in self.metrics:
                out.append(
                    f"| {m.metric} | {_num(m.baseline)} | {_num(m.candidate)} | {_num(m.delta)} | {m.outcome}"
                    + (f" ({_md(m.note)})" if m.note else "")
                    + " |"
                )
        if self.findings:
            out += ["", "### Findings", "", "| Gate | Rule | Where | Severity | Message |", "|---|---|---|---|---|"]
            for f in self.findings:
                out.append(f"| {f.gate} | {f.rule} | {_md(f.where())} | {f.severity} | {_md(f.message)} |")
        out += ["", f"Total time: {self.duration_s:.1f}s"]
        return "\n".join(out)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON for the status page (includes the computed overall)."""
        import json

        data = self.model_dump(mode="json")
        data["overall"] = self.overall
        return json.dumps(data, indent=indent, ensure_ascii=False)


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.4g}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
