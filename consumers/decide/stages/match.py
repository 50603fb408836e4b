"""The stages that make candidates: what changed against the subscription index, the
reminders that time alone makes due, and the daily heartbeats."""

from __future__ import annotations

from consumers.decide.heartbeat import heartbeats_due
from consumers.decide.rules import reminder_period
from consumers.decide.stages import Candidate, Context
from consumers.decide.stages.group import acknowledged
from monitor.events import Severity
from monitor.metrics import TRANSITIONS
from monitor.notifications import NotificationItem, Transition, notification_key
from monitor.source_health import health_conditions
from monitor.store import escalations


async def match(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Each derived transition, for every active subscription that hears it."""
    out = list(cands)
    for c, derived in ctx.changes:
        if not derived:
            continue
        subs = ctx.index.match(c)
        for d in derived:
            TRANSITIONS.labels(kind=c.kind.value, transition=d.transition.value).inc()
            item = NotificationItem(transition=d.transition, condition=c, facts=d.facts)
            for sub in subs:
                if sub.hears(d.transition.value):
                    key = notification_key(sub.id, c.id, d.transition, d.key_facts)
                    out.append(Candidate(sub=sub, key=key, severity=c.severity, item=item))
    return out


async def remind(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Every `repeat_interval` of an active condition, a reminder (keyed by its period),
    unless someone took it: an acknowledged escalation run stops its ladder's reminders of
    the condition, an acknowledged notification its own subscription's."""
    due: list[Candidate] = []
    for view, c in ctx.active:
        for sub in ctx.index.match(c):
            if sub.repeat is None or not sub.hears("reminder"):
                continue
            period = reminder_period(view, ctx.now, sub.repeat.total_seconds())
            if period < 1:
                continue
            facts = {"period": period, "since": view.changed_at.isoformat()}
            item = NotificationItem(transition=Transition.REMINDER, condition=c, facts=facts)
            key = notification_key(sub.id, c.id, Transition.REMINDER, facts)
            due.append(Candidate(sub=sub, key=key, severity=c.severity, item=item))
    if not due:
        return cands
    ids = {c.item.condition.id for c in due}
    taken = (await escalations.acknowledged_pairs(ctx.conn, ids)
             | await acknowledged(ctx.conn, ids))
    return [*cands, *(c for c in due if (c.sub.id, c.item.condition.id) not in taken)]


async def beat(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """On a tick, each heartbeat whose local time came since the last tick, saying how many
    of the watched sources are current (from the `source.health` conditions in the store).
    Missed while decide was down, a heartbeat is not sent late: its silence is the message."""
    if ctx.since is None:
        return cands
    subs = ctx.index.heartbeats()
    if not subs:
        return cands
    health = await health_conditions(ctx.conn)
    out = list(cands)
    for due in heartbeats_due(((s.id, hb) for s, hb in subs), ctx.since, ctx.now, health,
                              ctx.sources):
        sub = ctx.index.get(due.subscription_id)
        if sub is not None:
            out.append(Candidate(sub=sub, key=due.key, severity=Severity.INFO, item=due.item))
    return out
