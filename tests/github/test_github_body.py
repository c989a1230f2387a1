"""pr_body: the four sections, and GitHub's body limit with a truncation note."""

from __future__ import annotations

from sorte.github import BODY_MAX, pr_body

STAT = " strategies/bollinger.py | 4 ++--\n 1 file changed, 2 insertions(+), 2 deletions(-)"


def test_sections_in_order() -> None:
    body = pr_body("Widen the bands", "- set `k` to 2.5", STAT, "**PASS**: 5 gates passed")
    headings = [line for line in body.splitlines() if line.startswith("## ")]
    assert headings == ["## Request", "## Plan", "## Changes", "## Guardian verdict"]
    assert "Widen the bands" in body and "- set `k` to 2.5" in body and "**PASS**" in body
    assert f"```text\n{STAT}\n```" in body
    assert "truncated" not in body


def test_empty_sections_and_fences_inside_the_diff_stat() -> None:
    body = pr_body("r", "", "```\nweird\n```", "v")
    assert "## Plan\n\n_(none)_" in body
    assert "````text\n```\nweird\n```\n````" in body


def test_long_body_is_truncated_with_a_note() -> None:
    request = "Tighten the stops. " * 10
    verdict = "| gate | result |\n|---|---|\n" + "| tests | passed |\n" * 20_000
    stat = "x" * 30_000
    body = pr_body(request, "plan", stat, verdict)
    assert len(body) <= BODY_MAX
    assert request.strip() in body  # short sections are kept whole
    assert f"of {len(verdict.strip())} characters shown" in body
    assert "## Guardian verdict" in body and body.rstrip().endswith("_")


def test_every_section_too_long() -> None:
    parts = ["r" * 50_000, "p" * 50_000, "s" * 50_000, "v" * 50_000]
    body = pr_body(*parts, max_chars=10_000)
    assert len(body) <= 10_000
    assert body.count("truncated by Sorte") == 4
    assert all(heading in body for heading in ("## Request", "## Plan", "## Changes", "## Guardian verdict"))


def test_tiny_limit_is_a_hard_cut() -> None:
    assert len(pr_body("r" * 100, "p", "s", "v", max_chars=20)) == 20
