"""One human line per notification (SMS-sized): what happened, when, where, which notice.

The words are the condition's (monitor.wording); what is the subscription's own is added
here: the value that crossed its threshold, and the level.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.notifications import NotificationItem, Transition
from monitor.wording import wording

SMS_LIMIT = 160
# Places beyond these are counted ("+2"): the line stays one line.
_PLACES = 2


def item_line(item: NotificationItem, now: datetime) -> str:
    words = wording(item.condition, now)
    threshold = item.facts.get("threshold")
    if isinstance(threshold, dict):
        value = float(item.facts.get("value") or 0.0)
        if item.transition == Transition.ENDED:
            return f"{words.named()} back to normal: {value:,.0f} MW"
        above = threshold.get("above")
        direction = "above" if above is not None else "below"
        level = float(above if above is not None else threshold.get("below") or 0.0)
        return f"{words.named()}: {value:,.0f} MW, {direction} {level:,.0f} MW"
    text = words.headline(item.transition)
    if words.where.places:
        text += f" ({words.where.text(_PLACES)})"
    return text + (f" {words.reference}" if words.reference else "")


def summary(items: Sequence[NotificationItem], now: datetime) -> str:
    lines = [item_line(i, now) for i in items]
    text = lines[0] if len(lines) == 1 else f"{len(lines)} updates: " + "; ".join(lines)
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 3] + "..."
