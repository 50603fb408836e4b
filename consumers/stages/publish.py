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

import sqlalchemy as sa
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
from monitor.store.schema import notifications
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
    if not batches:
        return 0
    async with store.connect() as conn:
        admitted = await ledger_keys(conn, [b.key for b in batches])
    outgoing: list[tuple[Notification, groups.Batch]] = []
    inactive: list[str] = []
    for batch in batches:
        if batch.key in admitted:
            continue
        sub = lookup(batch.subscription_id)
        if sub is None:
            # Paused, unsubscribed or deleted while the batch waited: record, don't send.
            for key, item in zip(batch.item_keys, batch.items, strict=True):
                log.info("notification_dropped", notification_key=key,
                         reason="subscription_inactive", condition_id=item.condition.id)
            NOTIFICATIONS_SUPPRESSED.labels(reason="subscription_inactive").inc()
            inactive.append(batch.key)
            continue
        outgoing.append((build(sub, batch.key, batch, now), batch))
    if outgoing:
        await bus.publish_many(topic, [(n.subscription_id, notification_event(n))
                                       for n, _ in outgoing])
    async with store.begin() as conn:
        await ledger.admit_many(conn, [n for n, _ in outgoing], now)
        await groups.mark(conn, [n.key for n, _ in outgoing] + sorted(admitted), "sent")
        await groups.mark(conn, inactive, "suppressed")
    for n, _ in outgoing:
        NOTIFICATIONS_DECIDED.labels(channel=n.channel.type).inc()
        log.info("notification_published", notification_key=n.key, items=len(n.items),
                 severity=n.severity.value, channel=n.channel.type)
    return len(outgoing)


async def ledger_keys(conn: AsyncConnection, keys: list[str]) -> set[str]:
    """The keys among `keys` that the ledger already has (never published twice)."""
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        rows = await conn.execute(sa.select(notifications.c.key)
                                  .where(notifications.c.key.in_(keys[i:i + 500])))
        found.update(r[0] for r in rows)
    return found
