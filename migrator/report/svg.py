"""Inline SVG charts for the reports: no script, no external asset, every label escaped.

Each function returns `Markup` (safe to drop into an autoescaped template) because every
piece of text that goes into it passes through `escape` here. Charts carry a <title> and
a role="img" aria-label; the same numbers are always in a table next to them.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup
from markupsafe import escape as _escape

from migrator.outputs import neutralize_bidi


def escape(text) -> Markup:
    """markupsafe.escape, with bidi override controls made visible."""
    return _escape(neutralize_bidi(text) if isinstance(text, str) else text)

W = 720


def _t(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def stacked_bars(title: str, rows: list[tuple[str, list[int]]], series: list[tuple[str, str]]) -> Markup:
    """Horizontal stacked bars: rows of (label, values per series); series = (name, css class).

    Two drawings of the same numbers: a wide one (label beside the bar) and a narrow one for
    phones (label above the bar, legend on several lines, drawn at 360 units so text stays
    legible at 390 px); CSS shows the one that fits (`.chart-wide` / `.chart-narrow`).
    """
    if not rows:
        return Markup("")
    return Markup(_bars(title, rows, series, W, "chart chart-wide") + _bars(title, rows, series, 360, "chart chart-narrow"))


def _legend(series: list[tuple[str, str]], width: int) -> tuple[list[str], int]:
    """Legend items laid out left to right, wrapping to a new line when the width is used up."""
    parts, x, y = [], 0.0, 4
    for name, cls in series:
        w = 28 + 7.2 * len(name)
        if x > 0 and x + w > width:
            x, y = 0.0, y + 18
        parts.append(f'<rect x="{_t(x)}" y="{y}" width="12" height="12" class="{escape(cls)}"/>'
                     f'<text x="{_t(x + 16)}" y="{y + 10}" class="lbl">{escape(name)}</text>')
        x += w
    return parts, y + 24


def _bars(title: str, rows: list[tuple[str, list[int]]], series: list[tuple[str, str]], width: int,
          cls: str) -> str:
    narrow = width < 500
    legend, top = _legend(series, width)
    label_w = 0 if narrow else 190
    bar_w = width - label_w - 60
    row_h = 36 if narrow else 22
    h = top + row_h * len(rows) + 10
    biggest = max((sum(v) for _, v in rows), default=0) or 1
    parts = [f'<svg class="{cls}" viewBox="0 0 {width} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>', *legend]
    for i, (label, values) in enumerate(rows):
        y = top + i * row_h
        if narrow:
            parts.append(f'<text x="2" y="{y + 11}" class="lbl">{escape(label)}</text>')
            by = y + 15
        else:
            parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">{escape(label)}</text>')
            by = y + 3
        x = float(label_w)
        for v, (name, c) in zip(values, series):
            w = bar_w * v / biggest
            if w > 0:
                parts.append(f'<rect x="{_t(x)}" y="{by}" width="{_t(max(w, 1))}" height="16" '
                             f'class="{escape(c)}"><title>{escape(label)}: {escape(name)} {v:,}</title></rect>')
            x += w
        parts.append(f'<text x="{_t(x + 5)}" y="{by + 12}" class="lbl">{sum(values):,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline(title: str, events: list[tuple[str, str]], as_of: str) -> Markup:
    """Dates on a line with the as-of date marked: events = (ISO date, label). A wide drawing and,
    for phones, a vertical one (one date per line) that stays legible at 390 px."""
    if not events:
        return Markup("")
    return Markup(_timeline_wide(title, events, as_of) + _timeline_narrow(title, events, as_of))


def _timeline_narrow(title: str, events: list[tuple[str, str]], as_of: str) -> str:
    items = sorted([(d, label, False) for d, label in events] + [(as_of, f"as of {as_of}", True)],
                   key=lambda e: (e[0], not e[2]))
    width, row = 360, 22
    h = 10 + row * len(items)
    parts = [f'<svg class="chart chart-narrow" viewBox="0 0 {width} {h}" width="100%" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="8" y1="4" x2="8" y2="{h - 4}" class="axis"/>']
    for i, (d, label, is_as_of) in enumerate(items):
        y = 16 + row * i
        if is_as_of:
            parts.append(f'<line x1="0" y1="{y - 4}" x2="18" y2="{y - 4}" class="asof"/>'
                         f'<text x="24" y="{y}" class="lbl strong">{escape(label)}</text>')
        else:
            text = f"{d} {label}"
            parts.append(f'<circle cx="8" cy="{y - 4}" r="4" class="ev"/>'
                         f'<text x="24" y="{y}" class="lbl">{escape(text if len(text) <= 52 else text[:51] + "…")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _timeline_wide(title: str, events: list[tuple[str, str]], as_of: str) -> str:
    days = [date.fromisoformat(d) for d, _ in events] + [date.fromisoformat(as_of)]
    lo, hi = min(days), max(days)
    span = max((hi - lo).days, 1)
    left, right = 20, W - 20
    n = len(events)
    h = 70 + 18 * n

    def px(d: date) -> float:
        return left + (right - left) * (d - lo).days / span

    parts = [f'<svg class="chart chart-wide" viewBox="0 0 {W} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="40" x2="{right}" y2="40" class="axis"/>']
    for i, (d, label) in enumerate(sorted(events)):
        x = px(date.fromisoformat(d))
        y = 62 + 18 * i
        anchor = "end" if x > W * 0.6 else "start"
        if anchor == "end" and x - 6.5 * (len(d) + len(label) + 1) < 0:
            anchor = "start"
        parts.append(f'<circle cx="{_t(x)}" cy="40" r="5" class="ev"/>'
                     f'<line x1="{_t(x)}" y1="45" x2="{_t(x)}" y2="{y - 4}" class="tick"/>'
                     f'<text x="{_t(x)}" y="{y}" text-anchor="{anchor}" class="lbl">{escape(d)} {escape(label)}</text>')
    x = px(date.fromisoformat(as_of))
    # the marker crosses the axis only (never a label below it); its label stays inside the drawing
    anchor = "end" if x > W - 70 else "start" if x < 70 else "middle"
    parts.append(f'<line x1="{_t(x)}" y1="18" x2="{_t(x)}" y2="52" class="asof"/>'
                 f'<text x="{_t(x)}" y="14" text-anchor="{anchor}" class="lbl strong">as of {escape(as_of)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def columns(title: str, points: list[tuple[str, list[int]]], series: list[tuple[str, str]]) -> Markup:
    """Grouped columns over time (e.g. planned vs sent per hour): points = (label, values); a wide
    drawing and a 360-unit one for phones (fewer axis labels, same bars)."""
    if not points:
        return Markup("")
    return Markup(_columns(title, points, series, W, "chart chart-wide")
                  + _columns(title, points, series, 360, "chart chart-narrow"))


def _columns(title: str, points: list[tuple[str, list[int]]], series: list[tuple[str, str]], W: int,
             cls: str) -> str:
    h, left, bottom, top = 240, 50, 200, 30
    inner = W - left - 10
    biggest = max((max(v) for _, v in points), default=0) or 1
    slot = inner / len(points)
    bw = max(slot / (len(series) + 1), 0.5)
    parts = [f'<svg class="{cls}" viewBox="0 0 {W} {h}" width="100%" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{bottom}" x2="{W - 10}" y2="{bottom}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="lbl">{biggest:,}</text>',
             f'<text x="{left - 4}" y="{bottom}" text-anchor="end" class="lbl">0</text>']
    x = float(left)
    for name, c in series:
        parts.append(f'<rect x="{_t(x)}" y="4" width="12" height="12" class="{escape(c)}"/>'
                     f'<text x="{_t(x + 16)}" y="14" class="lbl">{escape(name)}</text>')
        x += 22 + 7.5 * len(name)
    # label every step-th column so that labels (about 6.5 px a character at 10 px) never overlap
    widest = max((len(label) for label, _ in points), default=1) * 7.5 + 12
    last_right = float("-inf")
    step = max(1, -(-int(widest) // max(int(slot), 1)))
    for i, (label, values) in enumerate(points):
        x0 = left + i * slot
        for j, (v, (name, c)) in enumerate(zip(values, series)):
            hh = (bottom - top) * v / biggest
            if hh > 0:
                parts.append(f'<rect x="{_t(x0 + bw * (j + 0.5))}" y="{_t(bottom - hh)}" width="{_t(bw)}" '
                             f'height="{_t(hh)}" class="{escape(c)}"><title>{escape(label)}: {escape(name)} '
                             f'{v:,}</title></rect>')
        cx = min(max(x0 + slot / 2, left + widest / 2), W - widest / 2)   # inside the drawing
        if i % step == 0 and cx - widest / 2 >= last_right:                  # never on top of the last one
            last_right = cx + widest / 2
            parts.append(f'<text x="{_t(cx)}" y="{bottom + 16}" text-anchor="middle" class="lbl small">'
                         f'{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
