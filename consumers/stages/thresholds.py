"""Thresholds with hysteresis on numeric signals (peak forecasts, demand, RA margin).

A threshold arms when the value reaches its level (`above`, or `below` for margins) and
clears only past the clear level, so a forecast wobbling around 45,000 MW alerts once. Each
arming is an *episode*: its issue and its all-clear share the episode number in their keys,
and the arming state lives in the store, so a restart neither re-alerts nor forgets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from consumers import state
from consumers.index import SubscriptionIndex, ThresholdRule
from consumers.stages import Candidate
from monitor.attributes import DemandAttributes, PeakForecastAttributes, RaOutlookAttributes
from monitor.clock import PACIFIC
from monitor.events import Condition
from monitor.notifications import NotificationItem, Transition, notification_key


def metric_value(c: Condition) -> float | None:
    a = c.attributes
    if isinstance(a, PeakForecastAttributes):
        return a.peak_mw
    if isinstance(a, DemandAttributes):
        return a.current_mw
    if isinstance(a, RaOutlookAttributes):
        return a.min_margin_mw
    return None


def _applies(rule: ThresholdRule, c: Condition) -> bool:
    a = c.attributes
    day = None
    if isinstance(a, PeakForecastAttributes):
        day = a.trade_date
    elif isinstance(a, DemandAttributes | RaOutlookAttributes):
        day = a.operating_day
    if day is None:
        return rule.threshold.day is None
    return rule.threshold.matches_day(day, c.observed_at.astimezone(PACIFIC).date())


async def evaluate(conn: AsyncConnection, index: SubscriptionIndex, c: Condition,
                   now: datetime) -> list[Candidate]:
    value = metric_value(c)
    if value is None:
        return []
    out: list[Candidate] = []
    for rule in index.threshold_rules(c):
        if not _applies(rule, c):
            continue
        t = rule.threshold
        arming = await state.get_arming(conn, rule.sub.id, rule.key, c.id)
        armed = arming.armed if arming else False
        episode = arming.episode if arming else 0
        if not armed and t.breached(value):
            new, transition = state.Arming(True, episode + 1), Transition.ISSUED
        elif armed and t.cleared(value):
            new, transition = state.Arming(False, episode), Transition.ENDED
        else:
            continue
        await state.set_arming(conn, rule.sub.id, rule.key, c.id, new, now,
                               exists=arming is not None)
        if not rule.sub.hears(transition.value):
            continue
        key_facts = {"threshold": rule.key, "episode": new.episode}
        facts = {"threshold": t.model_dump(mode="json"), "value": value,
                 "episode": new.episode}
        item = NotificationItem(transition=transition, condition=c, facts=facts)
        out.append(Candidate(sub=rule.sub, severity=t.severity, item=item,
                             key=notification_key(rule.sub.id, c.id, transition, key_facts)))
    return out
