"""SMS text: one GSM-7 segment (160 characters) per notification, with a link to the details.

Each kind renders a *head* (what and when: always kept) and optional *extras* in priority
order (notice number, regions, MW figures), added while they fit. Any character outside the
GSM-7 basic set is replaced by a look-alike, because a single one (a curly quote, a degree
sign, an emoji) would switch the message to UCS-2 and 70 characters a segment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from monitor.attributes import (
    DemandAttributes,
    DrEventAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
    StatusAttributes,
)
from monitor.clock import PACIFIC
from monitor.condition_text import TEST_TEXT, health_line, heartbeat_line
from monitor.events import Condition, Kind
from monitor.notifications import Notification, NotificationItem, Transition

SEGMENT = 160

# GSM 03.38 basic character set (each counts 1); the extension set counts 2 but is avoided.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_LOOKALIKE = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
              "\u2014": "-", "\u2026": "...", "\u00b0": " deg", "\u00a0": " ", "\t": " ",
              "[": "(", "]": ")", "{": "(", "}": ")", "~": "-", "^": "", "|": "/", "\\": "/",
              "\u20ac": "EUR"}

_REGION_SHORT = {"CAISO Grid": "all CAISO", "Northern CA Region": "NorCal",
                 "Southern CA Region": "SoCal", "VEA Region": "VEA",
                 "South OC San Diego Region": "S OC/SD"}

_VERB = {Transition.ISSUED: "", Transition.UPDATED: "UPDATED", Transition.STARTED: "STARTED",
         Transition.ENDED: "ENDED", Transition.CANCELLED: "CANCELLED",
         Transition.REMINDER: "REMINDER", Transition.TEST: "TEST",
         Transition.HEARTBEAT: ""}


def to_gsm7(text: str) -> str:
    out = []
    for ch in text:
        if ch in GSM7_BASIC:
            out.append(ch)
        else:
            out.append(_LOOKALIKE.get(ch, "?"))
    return "".join(out)


def is_single_segment(text: str) -> bool:
    return len(text) <= SEGMENT and all(ch in GSM7_BASIC for ch in text)


# -- times and numbers --------------------------------------------------------------------------

def _t(dt: datetime) -> str:
    return dt.astimezone(PACIFIC).strftime("%H:%M")


def _d(dt: datetime) -> str:
    local = dt.astimezone(PACIFIC)
    return f"{local.month}/{local.day}"


def window_text(c: Condition) -> str:
    start, end = c.window.start, c.window.end
    if start is None and end is None:
        return ""
    if start is None:
        assert end is not None
        return f"until {_d(end)} {_t(end)} PT"
    if end is None:
        return f"{_d(start)} {_t(start)}-TBD PT"
    if _d(start) == _d(end):
        return f"{_d(start)} {_t(start)}-{_t(end)} PT"
    return f"{_d(start)} {_t(start)}-{_d(end)} {_t(end)} PT"


def _mw(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f} MW"


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut if cut else text[:limit]


def regions_text(regions: tuple[str, ...], limit: int = 2) -> str:
    if not regions:
        return ""
    names = [_REGION_SHORT.get(r, r) for r in regions]
    if "all CAISO" in names:
        return "all CAISO"
    shown = ",".join(names[:limit])
    return shown + (f" +{len(names) - limit}" if len(names) > limit else "")


# -- per kind: (head, extras) -------------------------------------------------------------------

Rendered = tuple[str, list[str]]


def _notice(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, NoticeAttributes)
    if c.kind == Kind.CAISO_EEA:
        level = (a.level or "").upper()
        name = "EEA Watch" if level == "WATCH" else f"EEA {level}".strip()
        if a.step:
            name += f" step {a.step}"
    elif c.kind == Kind.CAISO_FLEX_ALERT:
        name = "Flex Alert"
    elif c.kind == Kind.CAISO_RMO:
        name = "RMO"
    elif c.kind == Kind.CAISO_TRANSMISSION_EMERGENCY:
        name = "Transmission Emergency"
    else:
        name = (a.level or "Alert").title()
    head = f"CAISO {name} {window_text(c)}".strip()
    extras = []
    if a.notice_no:
        extras.append(f"#{a.notice_no}")
    if regions_text(c.regions):
        extras.append(regions_text(c.regions))
    # A notice superseded in place (the CAISO producer's contract) names itself: no news.
    if a.supersedes and a.supersedes[-1] != a.notice_no:
        extras.append(f"replaces #{a.supersedes[-1]}")
    return head, extras


def _status(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, StatusAttributes)
    labels = a.grid_status or ("normal",)
    head = f"CAISO grid: {_clip(labels[0], 40)}"
    extras = [f"+{len(labels) - 1} more"] if len(labels) > 1 else []
    if a.current_reserve_mw is not None:
        extras.append(f"reserves {_mw(a.current_reserve_mw)}")
    if a.current_demand_mw is not None:
        extras.append(f"demand {_mw(a.current_demand_mw)}")
    return head, extras


def _demand(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, DemandAttributes)
    head = f"CAISO demand {_mw(a.current_mw)}"
    extras = []
    if a.day_ahead_peak_mw is not None:
        extras.append(f"DA peak {_mw(a.day_ahead_peak_mw)}")
    if a.todays_peak_mw is not None:
        extras.append(f"peak so far {_mw(a.todays_peak_mw)}")
    return head, extras


def _peak(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, PeakForecastAttributes)
    day = f"{a.trade_date.month}/{a.trade_date.day}"
    head = f"{a.area[:12]} peak fcst {day} {_mw(a.peak_mw)}"
    extras = [f"HE{a.hour_ending}"] if a.hour_ending else []
    extras.append(a.market_run)
    return head, extras


def _ra(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, RaOutlookAttributes)
    day = f"{a.operating_day.month}/{a.operating_day.day}"
    head = f"CAISO RA margin {day} min {_mw(a.min_margin_mw)} at {_t(a.min_margin_interval_end)}"
    extras = []
    if a.forecast_peak_mw is not None:
        extras.append(f"peak {_mw(a.forecast_peak_mw)}")
    return head, extras


def _dr(c: Condition) -> Rendered:
    a = c.attributes
    assert isinstance(a, DrEventAttributes)
    # SDP's product is "SDP": "SCE SDP event", not "SCE SDP SDP event".
    product = f" {a.product[:10]}" if a.product and a.product != a.program else ""
    head = f"{a.utility} {a.program[:12]}{product} event {window_text(c)}"
    extras = []
    places = a.sublaps or a.blocks or a.locations
    if places:
        shown = ",".join(places[:6])
        extras.append(shown + (f" +{len(places) - 6}" if len(places) > 6 else ""))
    return head, extras


def _health(item: NotificationItem) -> Rendered:
    """capmon's own sight, in the words of every other channel; the verb is in the words."""
    c = item.condition
    a = c.attributes
    assert isinstance(a, SourceHealthAttributes)
    if item.transition == Transition.TEST:
        return TEST_TEXT, []
    if item.transition == Transition.HEARTBEAT:
        return heartbeat_line(item), []
    extras = [] if not c.status.is_open or not a.last_error else [_clip(a.last_error, 60)]
    return health_line(item), extras


_RENDERERS: dict[Kind, Callable[[Condition], Rendered]] = {
    Kind.CAISO_EEA: _notice, Kind.CAISO_FLEX_ALERT: _notice, Kind.CAISO_RMO: _notice,
    Kind.CAISO_TRANSMISSION_EMERGENCY: _notice, Kind.CAISO_LEGACY: _notice,
    Kind.CAISO_STATUS: _status, Kind.CAISO_DEMAND: _demand, Kind.CAISO_PEAK_FORECAST: _peak,
    Kind.CAISO_RA_OUTLOOK: _ra, Kind.SCE_DR_EVENT: _dr,
}


def _item_parts(item: NotificationItem) -> Rendered:
    if item.condition.kind == Kind.SOURCE_HEALTH:
        return _health(item)
    head, extras = _RENDERERS[item.condition.kind](item.condition)
    verb = _VERB[item.transition]
    return (f"{verb}: {head}" if verb else head), extras


def render_sms(n: Notification, link: str) -> str:
    """The whole SMS: at most 160 GSM-7 characters, always ending with the link."""
    lead = max(n.items, key=lambda i: i.condition.severity.rank)
    head, extras = _item_parts(lead)
    if len(n.items) > 1:
        extras.insert(0, f"+{len(n.items) - 1} more")
    tail = f" {link}"
    budget = SEGMENT - len(tail)
    text = to_gsm7(head)
    if len(text) > budget:  # never expected for realistic values; the tests pin that
        text = text[: budget - 3].rstrip() + "..."
    for extra in extras:
        candidate = f"{text}, {to_gsm7(extra)}"
        if len(candidate) <= budget:
            text = candidate
    return text + tail
