"""Charts as SVG drawn on the server: no chart library, nothing fetched from the internet at run time.

Each chart is an ``<svg class="chart" data-chart="…" data-points="N">`` whose marks carry ``class="mark"``, so a
browser test can check that the marks were drawn with a size.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 640, 220, 36
COLOURS = {"ok": "#2f855a", "bad": "#c53030", "line": "#2b6cb0", "grid": "#e2e8f0", "text": "#4a5568"}


def _frame(name: str, title: str, points: int, body: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" data-points="{points}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 8}" y2="{HEIGHT - PAD}" stroke="{COLOURS["grid"]}"/>'
        f"{body}</svg>"
    )


def _empty(name: str, title: str) -> str:
    return _frame(
        name,
        title,
        0,
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{COLOURS["text"]}">No data yet</text>',
    )


def _label(x: float, text: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle" '
        f'fill="{COLOURS["text"]}">{escape(text)}</text>'
    )


def stacked_bars(name: str, title: str, labels: Sequence[str], ok: Sequence[int], bad: Sequence[int]) -> str:
    """Two stacked series per label (e.g. successful and failed deployments per week)."""
    totals = [a + b for a, b in zip(ok, bad, strict=True)]
    if not labels or not any(totals):
        return _empty(name, title)
    top = max(totals)
    slot = (WIDTH - PAD - 8) / len(labels)
    scale = (HEIGHT - 2 * PAD) / top
    parts = [f'<text x="{PAD - 4}" y="{PAD}" font-size="10" text-anchor="end" fill="{COLOURS["text"]}">{top}</text>']
    for i, label in enumerate(labels):
        x = PAD + i * slot + slot * 0.15
        w = slot * 0.7
        base = HEIGHT - PAD
        for value, colour, kind in ((ok[i], COLOURS["ok"], "ok"), (bad[i], COLOURS["bad"], "failed")):
            if value:
                h = value * scale
                base -= h
                parts.append(
                    f'<rect class="mark" data-kind="{kind}" x="{x:.1f}" y="{base:.1f}" width="{w:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {value} {kind}</title></rect>'
                )
        parts.append(_label(x + w / 2, label))
    return _frame(name, title, len(labels), "".join(parts))


def line(name: str, title: str, labels: Sequence[str], values: Sequence[float | None], unit: str = "") -> str:
    """A line over the labels; a null value (no samples) leaves a gap, it is not drawn as 0."""
    known = [v for v in values if v is not None]
    if not known:
        return _empty(name, title)
    top = max(known) or 1.0
    slot = (WIDTH - PAD - 8) / max(len(labels), 1)
    scale = (HEIGHT - 2 * PAD) / top
    points = []
    parts = [
        f'<text x="{PAD - 4}" y="{PAD}" font-size="10" text-anchor="end" fill="{COLOURS["text"]}">{top:.3g}</text>'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = PAD + i * slot + slot / 2
        parts.append(_label(x, label))
        if value is None:
            continue
        y = HEIGHT - PAD - value * scale
        points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{COLOURS["line"]}">'
            f"<title>{escape(label)}: {value:.3g}{escape(unit)}</title></circle>"
        )
    path = f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2"/>'
    return _frame(name, title, len(known), path + "".join(parts))


def histogram(name: str, title: str, edges: Sequence[float], counts: Sequence[int], unit: str = "h") -> str:
    """Counts per bucket [edges[i], edges[i+1]); the last bucket is open-ended."""
    labels = [f"<{edges[i + 1]:g}{unit}" if i + 1 < len(edges) else f"≥{edges[i]:g}{unit}" for i in range(len(counts))]
    return stacked_bars(name, title, labels, list(counts), [0] * len(counts))
