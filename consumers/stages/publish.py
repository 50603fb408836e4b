"""The last stage: publish each closed batch to `capmon.notifications.v1`, then admit it.

Order matters. A batch is published first and admitted to the ledger second (in the same
transaction that marks its items sent), so a crash between the two leaves the batch
`batched` and the next flush publishes it again under the same key: a notification is never
lost, and deliver, which admits keys idempotently too, sends it once. A key the ledger
already has is never published again by decide. Suppressed candidates never reach the bus:
they are admitted as `suppressed` with their reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.index import Compiled
from consumers.stages import Candidate
from consumers.stages import group as groups
from consumers.stages.summary import summary
from monitor.bus import Bus
from monitor.events import Severity
from monitor.metrics import NOTIFICATIONS_DECIDED, NOTIFICATIONS_SUPPRESSED
from monitor.notifications import Notification, notification_event
from monitor.store import Store, ledger
from monitor.topics import NOTIFICATIONS

log = structlog.get_logger(__name__)


def build(sub: Compiled, key: str, items: tuple[Candidate, ...] | groups.Batch,
          now: datetime) -> Notification:
    if isinstance(items, groups.Batch):
        its, sev = items.items, max(Severity(s) for s in items.severities)
    else:
        its, sev = tuple(c.item for c in items), max(c.severity for c in items)
    return Notification(key=key, tenant_id=sub.tenant_id, subscription_id=sub.id,
                        subscription_name=sub.name, channel=sub.channel, decided_at=now,
                        severity=sev, items=its, summary=summary(its))


async def record_suppressed(conn: AsyncConnection, cand: Candidate, reason: str,
                            now: datetime) -> None:
    await groups.add_suppressed(conn, cand, now)
    n = build(cand.sub, cand.key, (cand,), now)
    await ledger.admit(conn, n, now, state="suppressed", reason=reason)
    NOTIFICATIONS_SUPPRESSED.labels(reason=reason).inc()
    log.info("notification_suppressed", notification_key=cand.key, reason=reason,
             condition_id=cand.item.condition.id, transition=cand.item.transition.value)


async def flush(store: Store, bus: Bus, lookup: Callable[[str], Compiled | None],
                now: datetime, *, topic: str = NOTIFICATIONS) -> int:
    """Close due batches and publish every closed one; returns how many were published."""
    async with store.begin() as conn:
        await groups.claim_due(conn, now)
    async with store.connect() as conn:
        batches = await groups.batched(conn)
    published = 0
    for batch in batches:
        async with store.connect() as conn:
            already = await ledger.get(conn, batch.key)
        if already is not None:
            async with store.begin() as conn:
                await groups.mark(conn, batch.key, "sent")
            continue
        sub = lookup(batch.subscription_id)
        if sub is None:
            # Paused, unsubscribed or deleted while the batch waited: record, don't send.
            async with store.begin() as conn:
                for key, item in zip(batch.item_keys, batch.items, strict=True):
                    log.info("notification_dropped", notification_key=key,
                             reason="subscription_inactive", condition_id=item.condition.id)
                await groups.mark(conn, batch.key, "suppressed")
            NOTIFICATIONS_SUPPRESSED.labels(reason="subscription_inactive").inc()
            continue
        n = build(sub, batch.key, batch, now)
        await bus.publish(topic, sub.id, notification_event(n))
        async with store.begin() as conn:
            await ledger.admit(conn, n, now)
            await groups.mark(conn, batch.key, "sent")
        NOTIFICATIONS_DECIDED.labels(channel=sub.channel.type).inc()
        log.info("notification_published", notification_key=n.key, items=len(n.items),
                 severity=n.severity.value, channel=sub.channel.type)
        published += 1
    return published
