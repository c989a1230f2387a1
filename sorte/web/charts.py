"""Server-side SVG charts: no JavaScript library and no build step, so the page works offline
and renders the same in every browser (and in tests, as text)."""

from __future__ import annotations

from html import escape

from sorte.service import EquityPoint

WIDTH, HEIGHT, PAD = 720, 220, 36


def equity_svg(points: list[EquityPoint], initial: float | None = None) -> str:
    """An SVG line of equity per step, with the starting cash as a dashed baseline; a short
    note instead of a chart when there are fewer than two points."""
    if len(points) < 2:
        return '<p class="muted">No equity curve yet: nothing has traded.</p>'
    values = [p.equity for p in points]
    low, high = min(values), max(values)
    if initial is not None:
        low, high = min(low, initial), max(high, initial)
    if high - low < 1e-9:  # a flat curve would divide by zero; centre it instead
        low, high = low - 1, high + 1
    first, last = points[0].step, points[-1].step
    span = max(last - first, 1)

    def x(step: int) -> float:
        return PAD + (step - first) / span * (WIDTH - 2 * PAD)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - low) / (high - low) * (HEIGHT - 2 * PAD)

    line = " ".join(f"{x(p.step):.1f},{y(p.equity):.1f}" for p in points)
    colour = "#1a7f37" if values[-1] >= (initial if initial is not None else values[0]) else "#cf222e"
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>Equity from {values[0]:,.2f} to {values[-1]:,.2f} over {len(points)} points</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
    ]
    if initial is not None:
        yi = y(initial)
        parts.append(
            f'<line x1="{PAD}" y1="{yi:.1f}" x2="{WIDTH - PAD}" y2="{yi:.1f}" stroke="#8c959f" stroke-dasharray="4 4"/>'
        )
    parts += [
        f'<polyline class="equity" fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>',
        _label(PAD, 14, f"{high:,.2f}"),
        _label(PAD, HEIGHT - 8, f"{low:,.2f}"),
        _label(WIDTH - PAD, HEIGHT - 8, f"step {last}", anchor="end"),
        "</svg>",
    ]
    return "".join(parts)


def _label(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x}" y="{y}" font-size="11" fill="#57606a" text-anchor="{anchor}">{escape(text)}</text>'
