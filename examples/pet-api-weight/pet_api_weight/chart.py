"""The weight chart: an SVG line chart written by hand (no plotting dependency), every text escaped.

A front end can show it as-is (an <img> of a blob URL, or inline): fixed 800x400 size with a viewBox, so it
also scales; presentation attributes only (no <style>, no script), so a strict CSP allows it."""

from __future__ import annotations

import datetime as dt
import math
from xml.sax.saxutils import escape, quoteattr

from pet_api_weight.models import WeightSeries

WIDTH, HEIGHT = 800, 400
LEFT, RIGHT, TOP, BOTTOM = 72, 48, 48, 56  # margins: room for the value labels, title and the dates under the ends
LINE_COLOR = "#d6336c"
TARGET_COLOR = "#1c7ed6"
AXIS_COLOR = "#495057"
GRID_COLOR = "#e9ecef"
EMPTY_MESSAGE = "no weight records yet"
FONT = 'font-family="sans-serif" font-size="13"'


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` intervals over span."""
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def value_range(values: list[float]) -> tuple[float, float, float]:
    """The y axis: low, high and the step between ticks, padded around the values to round numbers."""
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    step = nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _number(value: float) -> str:
    """A tick or value label without float noise (12.5, 10, 0.25)."""
    return f"{value:.6g}"


def _text(x: float, y: float, content: str, *, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{AXIS_COLOR}" {FONT}{extra}>'
            f"{escape(content)}</text>")


def render_chart(series: WeightSeries, *, title: str) -> str:
    """The SVG document of the series (an empty chart with a message when it has no point)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    unit = series.unit
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label={quoteattr(f"{title}: weight ({unit})")}>',
        f"<title>{escape(f'{title}: weight ({unit})')}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        _text(LEFT, 28, f"{title} \u2014 weight ({unit})", anchor="start", extra=' font-weight="bold"'),
        _text(18, TOP + plot_h / 2, unit, extra=f' transform="rotate(-90 18 {TOP + plot_h / 2:.1f})"'),
        _text(LEFT + plot_w / 2, HEIGHT - 10, "date"),
    ]
    axes = (f'<path d="M{LEFT} {TOP} V{TOP + plot_h} H{LEFT + plot_w}" fill="none" stroke="{AXIS_COLOR}" '
            'stroke-width="1"/>')
    points = series.points
    if not points:
        parts += [axes, _text(LEFT + plot_w / 2, TOP + plot_h / 2, EMPTY_MESSAGE), "</svg>"]
        return "\n".join(parts) + "\n"

    target = series.target.weight if series.target is not None else None
    low, high, step = value_range([p.value for p in points] + ([target] if target is not None else []))
    first, last = points[0].date.toordinal(), points[-1].date.toordinal()

    def x_of(day: dt.date) -> float:
        return LEFT + plot_w / 2 if last == first else LEFT + (day.toordinal() - first) / (last - first) * plot_w

    def y_of(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    for i in range(round((high - low) / step) + 1):
        tick = low + i * step
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>')
        parts.append(_text(LEFT - 8, y + 4, _number(tick), anchor="end"))
    days = sorted({first, last} | ({first + (last - first) * i // 4 for i in range(5)} if last - first >= 4 else set()))
    for day in days:
        x = x_of(dt.date.fromordinal(day))
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 5}" '
                     f'stroke="{AXIS_COLOR}"/>')
        parts.append(_text(x, TOP + plot_h + 20, dt.date.fromordinal(day).isoformat()))
    parts.append(axes)
    if target is not None:
        y = y_of(target)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="{TARGET_COLOR}" '
                     'stroke-width="2" stroke-dasharray="8 6"/>')
        parts.append(_text(LEFT + plot_w - 4, y - 6, f"target {_number(target)} {unit}", anchor="end"))
    coords = " ".join(f"{x_of(p.date):.1f},{y_of(p.value):.1f}" for p in points)
    parts.append(f'<polyline points="{coords}" fill="none" stroke="{LINE_COLOR}" stroke-width="3" '
                 'stroke-linejoin="round" stroke-linecap="round"/>')
    for p in points:
        label = f"{p.date.isoformat()}: {_number(p.value)} {unit}"
        parts.append(f'<circle cx="{x_of(p.date):.1f}" cy="{y_of(p.value):.1f}" r="4" fill="{LINE_COLOR}">'
                     f"<title>{escape(label)}</title></circle>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
