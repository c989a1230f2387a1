"""The pull request's body: the trader's request, the plan, the diff stat and the guardian's verdict."""

from __future__ import annotations

BODY_MAX = 65536  # GitHub refuses longer pull request bodies (422)
NOTE = "\n\n_[truncated by Sorte: {shown} of {total} characters shown; the full text is in the run's record]_"


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}text\n{text}\n{ticks}"


def _section(title: str, text: str, fenced: bool, keep: int) -> str:
    shown = text[:keep].rstrip()
    content = (_fence(shown) if fenced else shown) if shown.strip() else "_(none)_"
    if keep < len(text):
        content += NOTE.format(shown=keep, total=len(text))
    return f"## {title}\n\n{content}"


def pr_body(
    request: str, plan_summary: str, diff_stat: str, verdict_markdown: str, *, max_chars: int = BODY_MAX
) -> str:
    """Markdown with the sections Request, Plan, Changes (the diff stat, fenced) and Guardian verdict.

    Never longer than ``max_chars`` (GitHub's limit by default): the longest sections are cut
    first, each cut followed by a note that says how much of it is shown.
    """
    sections = [
        ("Request", request.strip("\n"), False),
        ("Plan", plan_summary.strip("\n"), False),
        ("Changes", diff_stat.strip("\n"), True),
        ("Guardian verdict", verdict_markdown.strip("\n"), False),
    ]
    kept = [len(text) for _, text, _ in sections]

    def render() -> str:
        return "\n\n".join(_section(t, x, f, k) for (t, x, f), k in zip(sections, kept, strict=True)) + "\n"

    body = render()
    while len(body) > max_chars:
        i = max(range(len(sections)), key=kept.__getitem__)
        if kept[i] == 0:
            return body[:max_chars]  # too small a limit for the headings and notes: a hard cut
        total = len(sections[i][1])
        note = len(NOTE.format(shown=total, total=total)) if kept[i] == total else 0
        kept[i] = max(0, kept[i] - (len(body) - max_chars) - note)
        body = render()
    return body
