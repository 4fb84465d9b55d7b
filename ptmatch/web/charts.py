"""Bar charts as plain server-rendered SVG: no script, no CDN, no inline style (CSP-clean).

An SVG scales to its container (viewBox, width 100 %), so a chart stays readable at 390 px.
It is an image with a title for screen readers; the page puts the same numbers in a table
next to it. A value suppressed as "< 5" (``stats.SMALL``) gets no bar, only its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 24, 56
BAR = "#0b5d6b"
MUTED = "#6c757d"


@dataclass
class Chart:
    """One chart: its key (for the CSV), title, bar labels and values (numbers, None or a
    suppressed text), and whether the values are shares (0–1, drawn as percent)."""

    key: str
    title: str
    labels: list[str]
    values: list = field(default_factory=list)
    percent: bool = False
    value_header: str = ""
    note: str = ""

    @property
    def empty(self) -> bool:
        return not self.labels

    def display(self, value) -> str:
        return format_value(value, self.percent)

    @property
    def rows(self) -> list[tuple[str, str]]:
        return [(label, self.display(v)) for label, v in zip(self.labels, self.values, strict=True)]

    @property
    def svg(self) -> Markup:
        return bar_svg(self.key, self.title, self.labels, self.values, percent=self.percent)


def format_value(value, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if percent:
        return f"{value * 100:.0f} %"
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",") if not value.is_integer() else f"{value:.0f}"
    return str(value)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def bar_svg(key: str, title: str, labels: list[str], values: list, *, percent: bool) -> Markup:
    """A vertical bar chart; the y axis runs from 0 to the largest value (100 % for shares)."""
    numbers = [_number(v) for v in values]
    top = 1.0 if percent else max([n for n in numbers if n is not None] + [1.0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(labels), 1)
    step = plot_w / n
    bar_w = max(step * 0.7, 2)
    ident = f"chart-{escape(key)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="{ident}-title" class="ptm-chart" '
        f'font-family="sans-serif" font-size="12">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        f'stroke="{MUTED}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" fill="{MUTED}">'
        f"{escape(format_value(top if not percent else 1.0, percent))}</text>",
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" fill="{MUTED}">0</text>',
    ]
    rotate = n > 8
    for i, (label, value, number) in enumerate(zip(labels, values, numbers, strict=True)):
        x = LEFT + i * step + (step - bar_w) / 2
        cx = x + bar_w / 2
        h = 0.0 if number is None else plot_h * min(number / top, 1.0)
        y = TOP + plot_h - h
        if h > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{BAR}">'
                f"<title>{escape(label)}: {escape(format_value(value, percent))}</title></rect>"
            )
        parts.append(
            f'<text x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{escape(format_value(value, percent))}</text>"
        )
        ly = TOP + plot_h + 16
        if rotate:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="end" fill="{MUTED}" '
                f'transform="rotate(-45 {cx:.1f} {ly:.1f})">{escape(label)}</text>'
            )
        else:
            parts.append(
                f'<text x="{cx:.1f}" y="{ly:.1f}" text-anchor="middle" fill="{MUTED}">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
