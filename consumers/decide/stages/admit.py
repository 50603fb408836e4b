"""The last stage: admit to the ledger, in the transaction that logged the items.

Muted candidates enter the ledger as `suppressed` with their reason. Every batch whose time
has come is admitted as `pending` and its items are marked sent, all in the revision's (or
tick's) own transaction: the ledger is the outbox. Decide publishes the admitted
notifications only after that commit; deliver's bus consumer claims them at once, and if the
publish is lost (a crash, the broker down) deliver's scheduler finds them due in the ledger
after the handoff (`monitor.ledger.HANDOFF`) and sends them anyway. Nothing is
ever published that is not admitted, so nothing needs publishing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog

from consumers.decide.index import Compiled
from consumers.decide.stages import Candidate, Context
from consumers.decide.stages import group as groups
from consumers.decide.stages.summary import summary
from monitor import ledger
from monitor.events import Severity
from monitor.metrics import NOTIFICATIONS_DECIDED, NOTIFICATIONS_SUPPRESSED
from monitor.notifications import EscalationRef, Notification, NotificationItem, all_clear

log = structlog.get_logger(__name__)


def build(sub: Compiled, key: str, items: Sequence[NotificationItem],
          severities: Sequence[Severity], now: datetime,
          lines: dict[tuple[int, ...], str] | None = None,
          escalation: EscalationRef | None = None) -> Notification:
    """`lines` remembers summaries by their items: K subscribers of one item share one."""
    ids = tuple(id(i) for i in items)
    text = lines.get(ids) if lines is not None else None
    if text is None:
        text = summary(items, now)
        if lines is not None:
            lines[ids] = text
    severity = max(severities)
    return Notification(key=key, tenant_id=sub.tenant_id, subscription_id=sub.id,
                        subscription_name=sub.name, channel=sub.channel, decided_at=now,
                        severity=severity, items=tuple(items), summary=text,
                        acknowledgeable=severity >= sub.ack_severity
                        and not all_clear(i.transition for i in items), escalation=escalation)


async def admit(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    muted = [c for c in cands if c.muted is not None]
    if muted:
        await ledger.suppress(ctx.conn, [
            (build(c.sub, c.key, (c.item,), (c.severity,), ctx.now, escalation=c.escalation),
             c.muted or "")
            for c in muted], ctx.now)
        for c in muted:
            # A silence's reason names it; the metric counts silences as one reason.
            NOTIFICATIONS_SUPPRESSED.labels(reason=(c.muted or "").split(":")[0]).inc()
            log.info("notification_suppressed", notification_key=c.key, reason=c.muted,
                     condition_id=c.item.condition.id, transition=c.item.transition.value)
    # A revision can only make its own items due; batches that come due later are the tick's.
    due_now = any(c.due_at is not None and c.due_at <= ctx.now for c in cands)
    if ctx.revision is None or due_now:
        await _close_due(ctx, cands)
    return cands


async def _close_due(ctx: Context, cands: list[Candidate]) -> None:
    # Batches of one item that `group` logged closed, beside those the log holds open; in
    # subscriber order either way.
    alone = [groups.Batch(key=c.key, subscription_id=c.sub.id, tenant_id=c.sub.tenant_id,
                          item_keys=(c.key,)) for c in cands if c.alone]
    batches = sorted([*await groups.due_batches(ctx.conn, ctx.now), *alone],
                     key=lambda b: b.subscription_id)
    if not batches:
        return
    logged_closed = {b.key for b in alone}
    decided = {c.key: c for c in cands}
    earlier = await groups.items_of(ctx.conn, [k for b in batches for k in b.item_keys
                                               if k not in decided])
    outgoing: list[Notification] = []
    lines: dict[tuple[int, ...], str] = {}  # items stay alive in `outgoing`: ids stay unique
    sent: list[groups.Batch] = []
    inactive: list[groups.Batch] = []
    for batch in batches:
        sub = ctx.index.get(batch.subscription_id)
        if sub is None:
            # Paused, unsubscribed or deleted while the batch waited: record, don't send.
            NOTIFICATIONS_SUPPRESSED.labels(reason="subscription_inactive").inc()
            log.info("notification_dropped", notification_key=batch.key,
                     reason="subscription_inactive", items=len(batch.item_keys))
            inactive.append(batch)
            continue
        items: list[NotificationItem] = []
        severities: list[Severity] = []
        escalation: EscalationRef | None = None
        for key in batch.item_keys:
            if key in decided:
                items.append(decided[key].item)
                severities.append(decided[key].severity)
                escalation = escalation or decided[key].escalation
            else:
                severity, item, paged = earlier[key]
                items.append(NotificationItem.model_validate(item))
                severities.append(Severity(severity))
                if paged is not None:
                    escalation = escalation or EscalationRef.model_validate(paged)
        outgoing.append(build(sub, batch.key, items, severities, ctx.now, lines, escalation))
        if batch.key not in logged_closed:
            sent.append(batch)
    new = await ledger.admit(ctx.conn, outgoing, ctx.now)
    await groups.close(ctx.conn, sent, "sent", ctx.now)
    await groups.close(ctx.conn, inactive, "suppressed", ctx.now)
    for n in outgoing:
        if n.key in new:  # a key the ledger had is already on its way
            ctx.outbox.append(n)
            NOTIFICATIONS_DECIDED.labels(channel=n.channel.type).inc()
