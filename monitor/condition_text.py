"""Plain words for conditions and transitions: "CAISO EEA 3 issued 09/06 17:17-20:00 PT".

Shared by the notification summary decide writes (consumers/stages/summary.py) and the pages
anyone may read without a key (the status page, `/n/{prefix}` detail links). `public_line`
is the public form: a condition is public grid information, but a notification's facts (a
subscription's threshold level) and its subscription's name belong to the tenant.
"""

from __future__ import annotations

from datetime import datetime

from monitor.attributes import (
    DemandAttributes,
    DrEventAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
)
from monitor.clock import PACIFIC
from monitor.events import Condition, Kind
from monitor.notifications import Notification, NotificationItem, Transition
from monitor.source_health import source_label

TEST_TEXT = "capmon test notification"

VERB = {
    Transition.ISSUED: "issued", Transition.UPDATED: "updated", Transition.STARTED: "in effect",
    Transition.ENDED: "ended, all clear", Transition.CANCELLED: "cancelled, all clear",
    Transition.REMINDER: "still in effect", Transition.TEST: "test",
    Transition.HEARTBEAT: "heartbeat",
}
_NOTICE = {Kind.CAISO_FLEX_ALERT: "Flex Alert", Kind.CAISO_RMO: "CAISO RMO",
           Kind.CAISO_TRANSMISSION_EMERGENCY: "CAISO Transmission Emergency"}
_WINDOWED = (Transition.ISSUED, Transition.UPDATED, Transition.REMINDER)


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
        return f"capmon's view of {source_label(a.source)}"
    return c.kind.value


def window(c: Condition) -> str:
    """" 09/06 17:17-20:00 PT" (leading space), or "" when the condition has no start."""
    start, end = c.window.start, c.window.end
    if start is None:
        return ""
    s = start.astimezone(PACIFIC)
    text = f" {s:%m/%d %H:%M}"
    if end is not None:
        e = end.astimezone(PACIFIC)
        text += f"-{e:%H:%M}" if e.date() == s.date() else f"-{e:%m/%d %H:%M}"
    return text + " PT"


def _at(t: datetime) -> str:
    return f"{t.astimezone(PACIFIC):%m/%d %H:%M} PT"


def health_line(item: NotificationItem) -> str:
    """What a `source.health` transition means to a subscriber: "capmon cannot see CAISO
    notices since 09/06 09:47 PT", then "capmon sees CAISO notices again (blind 09/06
    09:47-10:12 PT)"."""
    c = item.condition
    a = c.attributes
    name = source_label(a.source) if isinstance(a, SourceHealthAttributes) else c.id
    since = c.window.start
    if item.transition in (Transition.ENDED, Transition.CANCELLED):
        end = c.window.end
        if since is not None and end is not None:
            gap = window(c).strip()
            return f"capmon sees {name} again (blind {gap})"
        return f"capmon sees {name} again"
    still = "still " if item.transition == Transition.REMINDER else ""
    return f"capmon {still}cannot see {name}" + (f" since {_at(since)}" if since else "")


def heartbeat_line(item: NotificationItem) -> str:
    """"capmon is watching: 7 of 7 sources current", naming any it cannot see."""
    a = item.condition.attributes
    if not isinstance(a, SourceHealthAttributes):
        return "capmon is watching"
    total = len(a.current) + len(a.not_current)
    text = f"capmon is watching: {len(a.current)} of {total} sources current"
    if a.not_current:
        text += "; cannot see " + ", ".join(source_label(s) for s in a.not_current)
    return text


def public_line(item: NotificationItem) -> str:
    """One item as a stranger may read it: the condition and what happened to it."""
    c = item.condition
    if item.transition == Transition.TEST:
        return TEST_TEXT
    if item.transition == Transition.HEARTBEAT:
        return heartbeat_line(item)
    if isinstance(c.attributes, SourceHealthAttributes):
        return health_line(item)
    if isinstance(item.facts.get("threshold"), dict):
        # The level crossed is the subscription's; say only that one was.
        cleared = item.transition in (Transition.ENDED, Transition.CANCELLED)
        return f"{label(c)} {'back under a threshold' if cleared else 'crossed a threshold'}"
    text = f"{label(c)} {VERB[item.transition]}"
    return text + window(c) if item.transition in _WINDOWED else text


def public_summary(n: Notification) -> str:
    """What a notification was about, with nothing of its tenant or subscription."""
    if n.test:
        return TEST_TEXT
    lines = list(dict.fromkeys(public_line(i) for i in n.items))
    return lines[0] if len(lines) == 1 else f"{len(n.items)} updates: " + "; ".join(lines)
