"""A small SVG line chart, so that reports can carry a plot without a plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, MARGIN = 640, 420, 56
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False
    markers_only: bool = False


def line_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> str:
    """An SVG document with one line (or set of markers) per series, axes with ticks, and a legend."""

    def x(value: float) -> float:
        return MARGIN + (value - x_range[0]) / (x_range[1] - x_range[0]) * (WIDTH - 2 * MARGIN)

    def y(value: float) -> float:
        return HEIGHT - MARGIN - (value - y_range[0]) / (y_range[1] - y_range[0]) * (HEIGHT - 2 * MARGIN)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="16" y="{HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 16 {HEIGHT / 2})">'
        f"{escape(y_label)}</text>",
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{WIDTH - 2 * MARGIN}" height="{HEIGHT - 2 * MARGIN}" fill="none" '
        'stroke="#333"/>',
    ]
    for i in range(6):
        tx = x_range[0] + i * (x_range[1] - x_range[0]) / 5
        ty = y_range[0] + i * (y_range[1] - y_range[0]) / 5
        parts.append(f'<text x="{x(tx):.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle">{tx:.2f}</text>')
        parts.append(f'<text x="{MARGIN - 6}" y="{y(ty) + 4:.1f}" text-anchor="end">{ty:.2f}</text>')
        parts.append(f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(ty):.1f}" y2="{y(ty):.1f}" stroke="#eee"/>')
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        coordinates = [(x(px), y(py)) for px, py in one.points]
        if one.markers_only:
            parts += [f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}"/>' for cx, cy in coordinates]
        else:
            dash = ' stroke-dasharray="6 4"' if one.dashed else ""
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coordinates)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        legend_y = MARGIN + 16 + 16 * index
        parts.append(
            f'<rect x="{WIDTH - MARGIN - 190}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{WIDTH - MARGIN - 174}" y="{legend_y}">{escape(one.label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
