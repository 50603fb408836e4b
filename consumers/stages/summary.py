"""One human line per notification (SMS-sized): what happened, when, where, which notice."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from monitor.attributes import (
    DemandAttributes,
    DrEventAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
)
from monitor.events import Condition, Kind
from monitor.notifications import NotificationItem, Transition

PACIFIC = ZoneInfo("America/Los_Angeles")
SMS_LIMIT = 160

_VERB = {
    Transition.ISSUED: "issued", Transition.UPDATED: "updated", Transition.STARTED: "in effect",
    Transition.ENDED: "ended, all clear", Transition.CANCELLED: "cancelled, all clear",
    Transition.REMINDER: "still in effect", Transition.TEST: "test",
}
_NOTICE = {Kind.CAISO_FLEX_ALERT: "Flex Alert", Kind.CAISO_RMO: "CAISO RMO",
           Kind.CAISO_TRANSMISSION_EMERGENCY: "CAISO Transmission Emergency"}


def label(c: Condition) -> str:
    a = c.attributes
    if isinstance(a, NoticeAttributes):
        if c.kind == Kind.CAISO_EEA:
            level = (a.level or "").upper()
            return "CAISO EEA Watch" if level == "WATCH" else f"CAISO EEA {level}".rstrip()
        if c.kind == Kind.CAISO_LEGACY:
            return f"CAISO {(a.level or 'notice').title()}"
        return _NOTICE.get(c.kind, c.kind.value)
    if isinstance(a, DrEventAttributes):
        return f"{a.utility} {a.program} DR event"
    if isinstance(a, PeakForecastAttributes):
        return f"{a.area} peak forecast {a.trade_date:%m/%d}"
    if isinstance(a, DemandAttributes):
        return "CAISO demand"
    if isinstance(a, RaOutlookAttributes):
        return f"CAISO RA margin {a.operating_day:%m/%d}"
    if isinstance(a, SourceHealthAttributes):
        return f"source {a.source} {a.reason}"
    return c.kind.value


def _window(c: Condition) -> str:
    start, end = c.window.start, c.window.end
    if start is None:
        return ""
    s = start.astimezone(PACIFIC)
    text = f" {s:%m/%d %H:%M}"
    if end is not None:
        e = end.astimezone(PACIFIC)
        text += f"-{e:%H:%M}" if e.date() == s.date() else f"-{e:%m/%d %H:%M}"
    return text + " PT"


def item_line(item: NotificationItem) -> str:
    c = item.condition
    text = f"{label(c)} {_VERB[item.transition]}"
    threshold = item.facts.get("threshold")
    if isinstance(threshold, dict):
        value = float(item.facts.get("value") or 0.0)
        above = threshold.get("above")
        direction = "above" if above is not None else "below"
        level = float(above if above is not None else threshold.get("below") or 0.0)
        if item.transition == Transition.ENDED:
            text = f"{label(c)} back to normal: {value:,.0f} MW"
        else:
            text = f"{label(c)} {value:,.0f} MW, {direction} {level:,.0f} MW"
        return text
    if item.transition in (Transition.ISSUED, Transition.UPDATED, Transition.REMINDER):
        text += _window(c)
    regions = [r for r in c.regions][:2]
    if regions and regions != ["CAISO Grid"]:
        text += f" ({', '.join(regions)})"
    a = c.attributes
    if isinstance(a, NoticeAttributes) and a.notice_no:
        text += f" #{a.notice_no}"
    return text


def summary(items: Sequence[NotificationItem]) -> str:
    lines = [item_line(i) for i in items]
    text = lines[0] if len(lines) == 1 else f"{len(lines)} updates: " + "; ".join(lines)
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 3] + "..."
