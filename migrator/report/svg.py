"""Inline SVG charts for the reports: no script, no external asset, every label escaped.

Each function returns `Markup` (safe to drop into an autoescaped template) because every
piece of text that goes into it passes through `escape` here. Charts carry a <title> and
a role="img" aria-label; the same numbers are always in a table next to them.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

W = 720


def _t(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def stacked_bars(title: str, rows: list[tuple[str, list[int]]], series: list[tuple[str, str]]) -> Markup:
    """Horizontal stacked bars: rows of (label, values per series); series = (name, css class)."""
    if not rows:
        return Markup("")
    label_w, bar_w, row_h = 190, W - 190 - 80, 22
    top = 28
    h = top + row_h * len(rows) + 10
    biggest = max((sum(v) for _, v in rows), default=0) or 1
    parts = [f'<svg class="chart" viewBox="0 0 {W} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    x = 0.0
    for name, cls in series:  # legend
        parts.append(f'<rect x="{_t(x)}" y="4" width="12" height="12" class="{escape(cls)}"/>'
                     f'<text x="{_t(x + 16)}" y="14" class="lbl">{escape(name)}</text>')
        x += 22 + 7.5 * len(name)
    for i, (label, values) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">{escape(label)}</text>')
        x = float(label_w)
        for v, (name, cls) in zip(values, series):
            w = bar_w * v / biggest
            if w > 0:
                parts.append(f'<rect x="{_t(x)}" y="{y + 3}" width="{_t(max(w, 1))}" height="{row_h - 6}" '
                             f'class="{escape(cls)}"><title>{escape(label)}: {escape(name)} {v:,}</title></rect>')
            x += w
        parts.append(f'<text x="{_t(x + 5)}" y="{y + 15}" class="lbl">{sum(values):,}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(title: str, events: list[tuple[str, str]], as_of: str) -> Markup:
    """Dates on a line with the as-of date marked: events = (ISO date, label)."""
    if not events:
        return Markup("")
    days = [date.fromisoformat(d) for d, _ in events] + [date.fromisoformat(as_of)]
    lo, hi = min(days), max(days)
    span = max((hi - lo).days, 1)
    left, right = 20, W - 20
    n = len(events)
    h = 70 + 18 * n

    def px(d: date) -> float:
        return left + (right - left) * (d - lo).days / span

    parts = [f'<svg class="chart" viewBox="0 0 {W} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="40" x2="{right}" y2="40" class="axis"/>']
    for i, (d, label) in enumerate(sorted(events)):
        x = px(date.fromisoformat(d))
        y = 62 + 18 * i
        anchor = "end" if x > W * 0.6 else "start"
        parts.append(f'<circle cx="{_t(x)}" cy="40" r="5" class="ev"/>'
                     f'<line x1="{_t(x)}" y1="45" x2="{_t(x)}" y2="{y - 4}" class="tick"/>'
                     f'<text x="{_t(x)}" y="{y}" text-anchor="{anchor}" class="lbl">{escape(d)} {escape(label)}</text>')
    x = px(date.fromisoformat(as_of))
    parts.append(f'<line x1="{_t(x)}" y1="18" x2="{_t(x)}" y2="{h - 4}" class="asof"/>'
                 f'<text x="{_t(x)}" y="14" text-anchor="middle" class="lbl strong">as of {escape(as_of)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(title: str, points: list[tuple[str, list[int]]], series: list[tuple[str, str]]) -> Markup:
    """Grouped columns over time (e.g. planned vs sent per hour): points = (label, values)."""
    if not points:
        return Markup("")
    h, left, bottom, top = 240, 50, 200, 30
    inner = W - left - 10
    biggest = max((max(v) for _, v in points), default=0) or 1
    slot = inner / len(points)
    bw = max(slot / (len(series) + 1), 0.5)
    parts = [f'<svg class="chart" viewBox="0 0 {W} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{bottom}" x2="{W - 10}" y2="{bottom}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="lbl">{biggest:,}</text>',
             f'<text x="{left - 4}" y="{bottom}" text-anchor="end" class="lbl">0</text>']
    x = float(left)
    for name, cls in series:
        parts.append(f'<rect x="{_t(x)}" y="4" width="12" height="12" class="{escape(cls)}"/>'
                     f'<text x="{_t(x + 16)}" y="14" class="lbl">{escape(name)}</text>')
        x += 22 + 7.5 * len(name)
    # label every step-th column so that labels (about 6.5 px a character at 10 px) never overlap
    widest = max((len(label) for label, _ in points), default=1) * 6.5 + 10
    step = max(1, -(-int(widest) // max(int(slot), 1)))
    for i, (label, values) in enumerate(points):
        x0 = left + i * slot
        for j, (v, (name, cls)) in enumerate(zip(values, series)):
            hh = (bottom - top) * v / biggest
            if hh > 0:
                parts.append(f'<rect x="{_t(x0 + bw * (j + 0.5))}" y="{_t(bottom - hh)}" width="{_t(bw)}" '
                             f'height="{_t(hh)}" class="{escape(cls)}"><title>{escape(label)}: {escape(name)} '
                             f'{v:,}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{_t(x0 + slot / 2)}" y="{bottom + 16}" text-anchor="middle" class="lbl small">'
                         f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
