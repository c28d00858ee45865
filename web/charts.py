"""Small inline-SVG charts for printed pages (the monthly report): no script, no library.

For :mod:`web.admin_pages`. Each function returns SVG markup (safe to embed: every label
is escaped) sized by a ``viewBox`` so that it scales to the page. The dashboard draws the
same kinds of chart in the browser (``static/js/charts.js``).
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

W, H, PAD_L, PAD_B, PAD_T = 640, 240, 44, 34, 14
COLOURS = {"bar": "#3d6fb6", "target": "#c0392b", "good": "#2e8b57", "fair": "#e0a800",
           "poor": "#c0392b", "unknown": "#b0b6bd", "muted": "#9fb7da"}  # fmt: skip


def _svg(body: str, label: str, height: int = H) -> Markup:
    return Markup(  # noqa: S704  (every text inside is escaped below)
        f'<svg viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}" '
        f'class="chart" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _axis(plot_h: int) -> str:
    lines = []
    for step in range(5):
        y = PAD_T + plot_h - plot_h * step / 4
        lines.append(
            f'<line x1="{PAD_L}" x2="{W - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e5e8"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{step * 25}%</text>"
        )
    return "".join(lines)


def share_bars(items: list[tuple[str, float | None]], target: float, label: str) -> Markup:
    """Bars of shares (0..1) per label, with the target as a red line."""
    plot_h = H - PAD_B - PAD_T
    n = max(1, len(items))
    slot = (W - PAD_L - 8) / n
    parts = [_axis(plot_h)]
    for i, (name, value) in enumerate(items):
        x = PAD_L + i * slot + slot * 0.15
        v = value or 0.0
        h = plot_h * v
        colour = COLOURS["bar"] if v >= target else COLOURS["muted"]
        parts.append(
            f'<rect x="{x:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{escape(name)}: {v:.0%}</title></rect>'
            f'<text x="{x + slot * 0.35:.1f}" y="{H - PAD_B + 14}" font-size="10" '
            f'text-anchor="middle">{escape(name[-5:])}</text>'
        )
    y = PAD_T + plot_h * (1 - target)
    parts.append(
        f'<line x1="{PAD_L}" x2="{W - 8}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{COLOURS["target"]}" stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{W - 10}" y="{y - 4:.1f}" font-size="11" text-anchor="end" '
        f'fill="{COLOURS["target"]}">{target:.0%}</text>'
    )
    return _svg("".join(parts), label)


def unit_bars(items: list[tuple[str, int, int]], label: str) -> Markup:
    """Horizontal bars per unit: all held (light) and held by video (dark)."""
    row = 18
    height = PAD_T + row * max(1, len(items)) + 8
    top = max((a for _, a, _ in items), default=0) or 1
    left = 110
    parts = []
    for i, (name, held, video) in enumerate(items):
        y = PAD_T + i * row
        full = (W - left - 50) * held / top
        part = (W - left - 50) * video / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{full:.1f}" height="{row - 5}" '
            f'fill="{COLOURS["muted"]}"/>'
            f'<rect x="{left}" y="{y + 2}" width="{part:.1f}" height="{row - 5}" '
            f'fill="{COLOURS["bar"]}"/>'
            f'<text x="{left + full + 4:.1f}" y="{y + 12}" font-size="10">{held}</text>'
        )
    return _svg("".join(parts), label, height)


def quality_bars(items: list[tuple[str, int, int, int, int]], label: str) -> Markup:
    """Stacked bars per label: good, fair, poor and unknown shares of presences."""
    plot_h = H - PAD_B - PAD_T
    n = max(1, len(items))
    slot = (W - PAD_L - 8) / n
    parts = [_axis(plot_h)]
    for i, (name, *counts) in enumerate(items):
        total = sum(counts) or 1
        x = PAD_L + i * slot + slot * 0.15
        y = float(PAD_T + plot_h)
        for key, count in zip(("good", "fair", "poor", "unknown"), counts, strict=True):
            h = plot_h * count / total
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[key]}"><title>{escape(name)} {key}: {count}</title></rect>'
            )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{H - PAD_B + 14}" font-size="10" '
            f'text-anchor="middle">{escape(name[-5:])}</text>'
        )
    return _svg("".join(parts), label)
