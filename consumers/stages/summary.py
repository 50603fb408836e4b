"""One human line per notification (SMS-sized): what happened, when, where, which notice."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.attributes import NoticeAttributes, SourceHealthAttributes
from monitor.condition_text import VERB, health_line, heartbeat_line, label, window
from monitor.notifications import NotificationItem, Transition

SMS_LIMIT = 160


def item_line(item: NotificationItem) -> str:
    c = item.condition
    if item.transition == Transition.HEARTBEAT:
        return heartbeat_line(item)
    if isinstance(c.attributes, SourceHealthAttributes):
        return health_line(item)
    text = f"{label(c)} {VERB[item.transition]}"
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
        text += window(c)
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
