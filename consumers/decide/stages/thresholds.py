"""Thresholds with hysteresis on numeric signals (peak forecasts, demand, RA margin).

A threshold arms when the value reaches its level (`above`, or `below` for margins) and
clears only past the clear level, so a forecast wobbling around 45,000 MW alerts once. Each
arming is an *episode*: its issue and its all-clear share the episode number in their keys,
and the arming state lives in the store, so a restart neither re-alerts nor forgets.
"""

from __future__ import annotations

from consumers.decide import state
from consumers.decide.index import ThresholdRule
from consumers.decide.stages import Candidate, Context
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


async def thresholds(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """The new revision's value against every threshold on its kind: issue on arming, the
    all-clear past the clear level. One read and at most two writes of arming state."""
    c = ctx.revision
    value = None if c is None else metric_value(c)
    if c is None or value is None:
        return cands
    rules = [r for r in ctx.index.threshold_rules(c) if _applies(r, c)]
    if not rules:
        return cands
    armings = await state.get_armings(ctx.conn, c.id, (r.sub.id for r in rules))
    changes: list[tuple[str, str, state.Arming, bool]] = []
    out = list(cands)
    for rule in rules:
        t = rule.threshold
        arming = armings.get((rule.sub.id, rule.key))
        armed = arming.armed if arming else False
        episode = arming.episode if arming else 0
        if not armed and t.breached(value):
            new, transition = state.Arming(True, episode + 1), Transition.ISSUED
        elif armed and t.cleared(value):
            new, transition = state.Arming(False, episode), Transition.ENDED
        else:
            continue
        changes.append((rule.sub.id, rule.key, new, arming is not None))
        if not rule.sub.hears(transition.value):
            continue
        key_facts = {"threshold": rule.key, "episode": new.episode}
        facts = {"threshold": t.model_dump(mode="json"), "value": value,
                 "episode": new.episode}
        item = NotificationItem(transition=transition, condition=c, facts=facts)
        out.append(Candidate(sub=rule.sub, severity=t.severity, item=item,
                             key=notification_key(rule.sub.id, c.id, transition, key_facts)))
    await state.set_armings(ctx.conn, c.id, changes, ctx.now)
    return out
