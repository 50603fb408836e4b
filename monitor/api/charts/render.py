"""The status page's charts as inline SVG (pygal), each with its words.

Every chart is drawn on the server, sized by its viewBox alone so the page scales it to the
width it has (a phone's included), and carries its text alternative twice: a `<title>` and
`<desc>` the SVG is labelled by (`role="img"`), and the same sentence as the figure's
caption, for readers who do not read the picture. pygal's tooltip script is left out: the
page runs no JavaScript, and its Content-Security-Policy would refuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pygal
from lxml import etree
from markupsafe import Markup
from pygal.style import Style

from monitor.api.charts.series import (
    AreaPeak,
    Bar,
    DemandSeries,
    MarginDay,
    Point,
    Timeline,
)
from monitor.api.status_view import TIGHT_MARGIN_MW
from monitor.clock import PACIFIC
from monitor.events import Severity

WIDTH, HEIGHT = 400, 270
EN_DASH = "\u2013"
MINUS = "\u2212"
# Bar colours by severity, dark enough to see on white; the legend says each one in words.
SEVERITY_COLOURS = {
    Severity.CRITICAL: "#7f1d1d", Severity.EMERGENCY: "#dc2626", Severity.WARNING: "#d97706",
    Severity.WATCH: "#0f766e", Severity.ADVISORY: "#2563eb", Severity.INFO: "#6b7280",
}
SHORTFALL, TIGHT, AMPLE = "#b91c1c", "#d97706", "#15803d"
_INK, _FORECAST, _HOUR_AHEAD, _BAND = "#111827", "#2563eb", "#7c3aed", "#93c5fd"


@dataclass(frozen=True)
class Chart:
    key: str  # "demand", "peaks", "margins", "timeline": the element ids derive from it
    title: str
    summary: str  # the text alternative: one or two sentences with the numbers
    svg: Markup | None  # None: nothing to draw, and `summary` says why


def mw(value: float) -> str:
    text = f"{abs(value):,.0f} MW"
    return f"{MINUS}{text}" if value < 0 else text


def clock(t: datetime) -> str:
    local = t.astimezone(PACIFIC)
    return f"{local:%H:%M} {local.tzname()}"


def day_name(d: date) -> str:
    return f"{d:%a %b} {d.day}"


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="transparent", plot_background="#ffffff", foreground=_INK,
        foreground_strong=_INK, foreground_subtle="#6b7280", colors=tuple(colours),
        font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        label_font_size=14, major_label_font_size=14, legend_font_size=14,
        value_font_size=13, value_label_font_size=13, title_font_size=14,
        opacity="1", opacity_hover="1", transition="0s", guide_stroke_color="#d1d5db",
        # Each series' own `stroke_style` width, which a fixed width here would override.
        stroke_width="inherit")


def _accessible(key: str, title: str, summary: str) -> Callable[[Any], Any]:
    """An xml filter: the SVG labelled by its own title and description."""
    def apply(root: Any) -> Any:
        # pygal's comments, and the configuration it writes for its tooltip script.
        for node in root.xpath("comment() | defs/script"):
            node.getparent().remove(node)
        root.set("role", "img")
        root.set("aria-labelledby", f"chart-{key}-title chart-{key}-desc")
        heading = root.find("title")
        heading.set("id", f"chart-{key}-title")
        heading.text = title
        desc = etree.Element("desc", id=f"chart-{key}-desc")
        desc.text = summary
        heading.addnext(desc)
        return root
    return apply


def _draw(chart: Any, key: str, title: str, summary: str) -> Chart:
    # pygal makes room for `series // columns` legend rows, one short when they do not
    # divide evenly, and cuts the descenders of the last row.
    series, columns = len(chart.raw_series), chart.config.legend_at_bottom_columns
    if chart.config.show_legend:
        chart.config.margin_bottom = 14 + (24 if series % columns else 0)
    chart.add_xml_filter(_accessible(key, title, summary))
    # lxml serialised it, every text node escaped: safe to place in the page as it is.
    return Chart(key, title, summary, Markup(chart.render(is_unicode=True)))  # noqa: S704


def _config(colours: Sequence[str], **overrides: Any) -> dict[str, Any]:
    return {"js": [], "explicit_size": False, "disable_xml_declaration": True,
            "width": WIDTH, "height": HEIGHT, "style": _style(colours), "margin": 6,
            "margin_right": 18, "legend_box_size": 14,
            "legend_at_bottom": True, "legend_at_bottom_columns": 2, "truncate_legend": -1,
            "truncate_label": -1, "show_x_guides": False, "print_values": False,
            **overrides}


def demand_chart(s: DemandSeries) -> Chart:
    title = f"CAISO demand today ({day_name(s.day)})"
    if not s.actual:
        return Chart("demand", title, "No data: no demand reading of today is stored yet.", None)
    hours = (s.end - s.start).total_seconds() / 3600

    def xy(points: Sequence[Point]) -> list[tuple[float, float]]:
        return [((p.at - s.start).total_seconds() / 3600, p.mw) for p in points]

    sentences = []
    if s.current is not None:
        sentences.append(f"Demand {mw(s.current.mw)} at {clock(s.current.at)}")
    if s.forecast_peak_mw is not None:
        when = f" at {clock(s.forecast_peak_at)}" if s.forecast_peak_at else ""
        share = (f", {100 * s.current.mw / s.forecast_peak_mw:.0f}% of it"
                 if s.current is not None and s.forecast_peak_mw else "")
        sentences.append(f"today's forecast peak {mw(s.forecast_peak_mw)}{when}{share}")
    for name, curve in (("day-ahead", s.day_ahead), ("hour-ahead", s.hour_ahead)):
        if curve:
            sentences.append(f"the {name} forecast for {clock(curve[-1].at)} was "
                             f"{mw(curve[-1].mw)}")
    summary = ("; ".join(sentences) + f". The curves are the {len(s.actual)} readings "
               "capmon recorded today.")
    chart = pygal.XY(**_config(
        (_INK, _FORECAST, _HOUR_AHEAD, SHORTFALL, _INK),
        xrange=(0, hours), show_dots=False, value_formatter=lambda v: f"{v:,.0f}",
        x_labels=[{"label": f"{(s.start + timedelta(hours=h)).astimezone(PACIFIC):%H:%M}",
                   "value": h} for h in range(0, int(hours), 6)],
        y_title="MW"))
    chart.add("Demand", xy(s.actual), stroke_style={"width": 3})
    chart.add("Day-ahead", xy(s.day_ahead),
              stroke_style={"width": 2, "dasharray": "6,4"})
    chart.add("Hour-ahead", xy(s.hour_ahead),
              stroke_style={"width": 2, "dasharray": "2,3"})
    if s.forecast_peak_mw is not None:
        line = [(0.0, s.forecast_peak_mw), (hours, s.forecast_peak_mw)]
        chart.add("Forecast peak", line, stroke_style={"width": 2})
    if s.current is not None:
        chart.add("Now", xy([s.current]), stroke=False, show_dots=True,
                  dots_size=6)
    return _draw(chart, "demand", title, summary)


def peaks_chart(peaks: Sequence[AreaPeak], tomorrow: date) -> Chart:
    title = f"Tomorrow's forecast peak by area ({day_name(tomorrow)})"
    known = [p for p in peaks if p.peak_mw is not None or p.band is not None]
    if not known:
        return Chart("peaks", title, "No data: no peak forecast for tomorrow is stored.", None)
    words = []
    for p in known:
        peak = f"{mw(p.peak_mw)}" if p.peak_mw is not None else "no forecast"
        if p.band is None:
            words.append(f"{p.area} {peak}, no tenant threshold")
            continue
        low, high = p.band
        where = ("" if p.peak_mw is None else " above" if p.peak_mw >= high else
                 " below" if p.peak_mw < low else " within")
        words.append(f"{p.area} {peak},{where} the {mw(low)}{EN_DASH}{mw(high)} range of "
                     f"thresholds set by {p.tenants} "
                     f"tenant{'' if p.tenants == 1 else 's'}")
    summary = "; ".join(words) + "."
    n = len(known)
    row = {p.area: n - 1 - i for i, p in enumerate(known)}
    top = max(max(p.peak_mw or 0.0, p.band[1] if p.band else 0.0) for p in known)
    step = 10_000 if top <= 40_000 else 20_000
    bands: list[tuple[float, float] | None] = []
    bars: list[tuple[float, float] | None] = []
    for p in known:
        if p.band is not None:
            bands += [(p.band[0], row[p.area]), (p.band[1], row[p.area]), None]
        if p.peak_mw is not None:
            bars += [(0.0, row[p.area]), (p.peak_mw, row[p.area]), None]
    chart = pygal.XY(**_config(
        (_INK, _BAND), range=(-0.6, n - 0.4), xrange=(0, top * 1.04),
        allow_interruptions=True, show_dots=False, show_y_guides=False, show_x_guides=True,
        x_labels=[{"label": f"{v:,}", "value": v} for v in range(0, int(top) + 1, step)],
        y_labels=[{"label": p.area + (f" {p.peak_mw:,.0f}" if p.peak_mw is not None else ""),
                   "value": row[p.area]} for p in known],
        x_title="MW", legend_at_bottom_columns=1))
    chart.add("Forecast peak", bars, stroke_style={"width": 10, "linecap": "butt"})
    chart.add("Tenants' thresholds (range)", bands,
              stroke_style={"width": 28, "linecap": "butt"})
    return _draw(chart, "peaks", title, summary)


def margins_chart(days: Sequence[MarginDay]) -> Chart:
    title = "Lowest resource adequacy margin per day, next 7 days"
    if not days:
        return Chart("margins", title, "No data: the 7-day outlook has not been read yet.",
                     None)
    short = [d for d in days if d.shortfall]
    lowest = min(days, key=lambda d: d.margin_mw)
    summary = (f"{len(short)} of {len(days)} days with a shortfall"
               + (f" ({', '.join(day_name(d.day) for d in short)})" if short else "")
               + f"; lowest {mw(lowest.margin_mw)} on {day_name(lowest.day)} at "
               f"{clock(lowest.at)}. "
               + "; ".join(f"{day_name(d.day)} {mw(d.margin_mw)}" for d in days) + ".")
    chart = pygal.Bar(**_config(
        (AMPLE,), show_legend=False, print_values=True, print_values_position="top",
        value_formatter=lambda v: mw(v).removesuffix(" MW"),
        x_labels=[f"{d.day:%a}" for d in days], y_title="MW",
        x_title="below zero, red: shortfall"))
    chart.add("Lowest margin", [
        {"value": d.margin_mw, "label": "shortfall" if d.shortfall else "",
         "color": SHORTFALL if d.shortfall else TIGHT if d.margin_mw < TIGHT_MARGIN_MW
         else AMPLE} for d in days])
    return _draw(chart, "margins", title, summary)


def _ticks(tl: Timeline) -> list[dict[str, Any]]:
    """Every Pacific midnight in the window, in hours from now."""
    ticks: list[dict[str, Any]] = []
    day = tl.start.astimezone(PACIFIC).date()
    while (midnight := datetime(day.year, day.month, day.day, tzinfo=PACIFIC)) <= tl.end:
        if tl.start <= midnight:
            ticks.append({"label": f"{day:%a} {day.day}",
                          "value": (midnight - tl.now).total_seconds() / 3600})
        day += timedelta(days=1)
    return ticks


def timeline_chart(tl: Timeline) -> Chart:
    title = "Notices and DR events, last 24 hours and next 48"
    if not tl.bars:
        return Chart("timeline", title, "No active or scheduled notice or DR event from "
                     f"{clock(tl.start)} {day_name(tl.start.astimezone(PACIFIC).date())} to "
                     f"{day_name(tl.end.astimezone(PACIFIC).date())}.", None)
    hour = timedelta(hours=1)
    before, after = (tl.start - tl.now) / hour, (tl.end - tl.now) / hour

    def hours(t: datetime | None, default: float) -> float:
        if t is None:
            return default
        return min(max((t - tl.now) / hour, before), after)

    def when(t: datetime, other: datetime | None) -> str:
        day = t.astimezone(PACIFIC).date()
        same = other is not None and other.astimezone(PACIFIC).date() == day
        return clock(t) if same else f"{day_name(day)} {clock(t)}"

    def window(b: Bar) -> str:
        start = when(b.start, None) if b.start else "start unknown"
        return f"{start} {EN_DASH} {when(b.end, b.start) if b.end else 'end TBD'}"

    n = len(tl.bars)
    summary = (f"At {clock(tl.now)}: " + "; ".join(
        f"{b.label} ({b.severity.value.upper()}, {b.status}) {window(b)}" for b in tl.bars)
        + ".")
    severities = sorted({b.severity for b in tl.bars}, key=lambda s: -s.rank)
    # Room for every bar and every legend row, whatever the number of events.
    height = 90 + 26 * n + 24 * (len(severities) + 1)
    chart = pygal.XY(**_config(
        [*(SEVERITY_COLOURS[s] for s in severities), _INK], xrange=(before, after), height=height,
        range=(-0.6, n - 0.4), allow_interruptions=True, show_dots=False, show_y_guides=False,
        show_x_guides=True, x_labels=_ticks(tl), legend_at_bottom_columns=1,
        y_labels=[{"label": b.label.removeprefix("CAISO "), "value": n - 1 - i}
                  for i, b in enumerate(tl.bars)]))
    for severity in severities:
        segments: list[tuple[float, float] | None] = []
        for i, b in enumerate(tl.bars):
            if b.severity == severity:
                y = n - 1 - i
                segments += [(hours(b.start, before), y), (hours(b.end, after), y), None]
        chart.add(severity.value.upper(), segments,
                  stroke_style={"width": 14, "linecap": "butt"})
    chart.add("Now", [(0.0, -0.6), (0.0, n - 0.4)], stroke_style={"width": 3})
    return _draw(chart, "timeline", title, summary)
