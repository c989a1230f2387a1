from __future__ import annotations

import json

from guardian import Finding, GateResult, MetricRow, Verdict


def _verdict(*statuses: str) -> Verdict:
    return Verdict(gates=[GateResult(gate=f"g{i}", status=s) for i, s in enumerate(statuses)])


def test_overall_rules() -> None:
    assert _verdict("pass", "pass").overall == "pass"
    assert _verdict("pass", "fail", "error").overall == "fail"
    assert _verdict("pass", "inconclusive").overall == "inconclusive"
    assert _verdict("pass", "error").overall == "inconclusive"
    assert _verdict("pass", "timeout").overall == "fail"
    assert _verdict().overall == "inconclusive"


def test_three_renderings() -> None:
    v = Verdict(
        candidate="sorte/edit-1",
        baseline="main",
        duration_s=12.5,
        gates=[
            GateResult(
                gate="security",
                status="fail",
                summary="1 blocking",
                duration_s=9.1,
                findings=[
                    Finding(
                        gate="security",
                        rule="sorte-no-eval-exec",
                        file="strategies/x.py",
                        line=3,
                        message="no eval | here",
                        severity="high",
                    )
                ],
            ),
            GateResult(
                gate="benchmark",
                status="pass",
                duration_s=2.0,
                metrics=[
                    MetricRow(metric="sharpe", baseline=1.0, candidate=1.2, delta=0.2, outcome="better"),
                    MetricRow(metric="trades", baseline=10, candidate=10, delta=0, outcome="same"),
                ],
            ),
        ],
    )
    assert v.overall == "fail"
    text = v.to_text()
    assert "FAIL" in text and "strategies/x.py:3" in text and "sharpe" in text and "trades" not in text
    md = v.to_markdown()
    assert "| security |" in md and "| sharpe | 1 | 1.2 | 0.2 | better |" in md and "no eval \\| here" in md
    data = json.loads(v.to_json())
    assert data["overall"] == "fail"
    assert data["gates"][0]["findings"][0]["rule"] == "sorte-no-eval-exec"
    assert Verdict.model_validate(data).overall == "fail"
    assert v.reasons() == ["security: fail (1 blocking)"]
