"""Server-rendered SVG charts (pygal) for the ops dashboard.

Nothing is loaded by the browser: pygal's tooltip script (a CDN URL by default) is
switched off with ``js=[]``, and the inline ``window.pygal.config`` block it still writes
is dropped, so the SVG is plain markup that works under a strict Content-Security-Policy.
Bars and dots link to the admin page listing the rows they count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pygal
from django.utils.safestring import SafeString
from django.utils.safestring import mark_safe
from pygal.style import Style

FONT = '-apple-system, "Segoe UI", system-ui, Roboto, "Helvetica Neue", Arial, sans-serif'
# Mid-grey text and guides read on the admin's light and dark themes alike.
GREY = "#8a8a8a"

COLORS = {
    "processed": "#3f9c35",
    "backlog": "#e0a000",
    "failed": "#ba2121",
    "quarantined": "#6c6c6c",
    "latency": "#417690",
}
# Rejection reasons get distinct hues in a stable order.
REASON_COLORS = ("#ba2121", "#e07b00", "#8e44ad", "#2c7fb8", "#d81b60", "#6d4c41", "#00897b")

_CONFIG_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


@dataclass(frozen=True)
class Point:
    value: float | None
    href: str | None = None
    label: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: Sequence[Point]


def _style(colors: Sequence[str]) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground=GREY,
        foreground_strong=GREY,
        foreground_subtle=GREY,
        guide_stroke_color=GREY,
        major_guide_stroke_color=GREY,
        font_family=FONT,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        title_font_size=14,
        value_font_size=10,
        no_data_font_size=18,
        opacity=".85",
        opacity_hover="1",
        colors=tuple(colors),
    )


def _common(colors: Sequence[str], title: str, x_labels: Sequence[str]) -> dict:
    return {
        "style": _style(colors),
        "title": title,
        "x_labels": list(x_labels),
        "js": [],  # no tooltip script from a CDN: the page loads nothing external
        "disable_xml_declaration": True,  # inline in the HTML page
        "width": 900,
        "height": 280,
        "margin": 10,
        "margin_bottom": 30,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 5,
        "show_minor_x_labels": False,
        "x_labels_major_every": 3,
        "truncate_legend": -1,
        "truncate_label": -1,
        "no_data_text": "no data",
        "include_x_axis": True,
    }


def _values(points: Sequence[Point]) -> list:
    values = []
    for point in points:
        if point.value is None:
            values.append(None)
            continue
        value: dict = {"value": point.value}
        if point.label:
            value["label"] = point.label
        if point.href:
            value["xlink"] = {"href": point.href, "target": "_top"}
        values.append(value)
    return values


def _render(chart) -> SafeString:
    svg = chart.render(is_unicode=True)
    # The remaining script only stores pygal's config for its (disabled) tooltip JS.
    return mark_safe(_CONFIG_SCRIPT.sub("", svg))  # noqa: S308 - pygal escapes all text


def stacked_bars(*, title: str, x_labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """Return an SVG stacked bar chart: one bar per x label, one stack layer per series."""
    chart = pygal.StackedBar(
        **_common([s.color for s in series], title, x_labels),
        print_values=False,
        min_scale=2,
        max_scale=6,
    )
    for one in series:
        chart.add(one.name, _values(one.points))
    return _render(chart)


def line(
    *, title: str, x_labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> SafeString:
    """Return an SVG line chart; ``None`` values leave gaps (hours without data)."""
    chart = pygal.Line(
        **_common([s.color for s in series], title, x_labels),
        show_dots=True,
        dots_size=3,
        allow_interruptions=True,
        value_formatter=lambda v: f"{v:.0f} {unit}".strip(),
        min_scale=2,
        max_scale=6,
    )
    for one in series:
        chart.add(one.name, _values(one.points))
    return _render(chart)
