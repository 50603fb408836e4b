"""Reads of the ledger: one entry, the delivery log, what is due, counts for gauges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.ledger.model import CLAIMABLE, LedgerEntry, State
from monitor.ledger.senders import Sender
from monitor.notifications import Notification
from monitor.store.schema import attempts, notifications

_N = notifications.c
_COLS = (_N.key, _N.tenant_id, _N.subscription_id, _N.channel, _N.state, _N.attempt_count,
         _N.next_attempt_at, _N.last_error, _N.created_at, _N.updated_at, _N.delivered_at,
         _N.payload, _N.attempt_base)


def _entry(row: Any) -> LedgerEntry:
    values = list(row)
    values[4] = State(values[4])
    return LedgerEntry(*values)


async def get(conn: AsyncConnection, key: str, tenant_id: str | None = None) -> LedgerEntry | None:
    q = sa.select(*_COLS).where(_N.key == key)
    if tenant_id is not None:
        q = q.where(_N.tenant_id == tenant_id)
    row = (await conn.execute(q)).first()
    return None if row is None else _entry(row)


async def by_prefix(conn: AsyncConnection, prefix: str) -> Notification | None:
    """The one notification whose key starts with `prefix` (a detail link), else None."""
    rows = (await conn.execute(sa.select(_N.payload).where(_N.key.like(f"{prefix}%"))
                               .limit(2))).all()
    return Notification.model_validate(rows[0][0]) if len(rows) == 1 else None


async def list_entries(
    conn: AsyncConnection, *, tenant_id: str | None = None, subscription_id: str | None = None,
    states: Sequence[str] = (), channel: str | None = None, since: datetime | None = None,
    limit: int = 100, offset: int = 0, include_tests: bool = True,
) -> list[LedgerEntry]:
    q = sa.select(*_COLS).order_by(_N.created_at.desc(), _N.key)
    if not include_tests:
        # IS NOT TRUE, so a payload without the field counts as not a test.
        q = q.where(_N.payload["test"].as_boolean().is_not(True))
    if tenant_id is not None:
        q = q.where(_N.tenant_id == tenant_id)
    if subscription_id is not None:
        q = q.where(_N.subscription_id == subscription_id)
    if states:
        q = q.where(_N.state.in_(list(states)))
    if channel is not None:
        q = q.where(_N.channel == channel)
    if since is not None:
        q = q.where(_N.created_at >= since)
    return [_entry(r) for r in await conn.execute(q.limit(limit).offset(offset))]


async def attempts_for(conn: AsyncConnection, key: str) -> list[dict[str, Any]]:
    rows = await conn.execute(sa.select(attempts).where(attempts.c.notification_key == key)
                              .order_by(attempts.c.attempt_no))
    return [dict(r._mapping) for r in rows]


async def due(conn: AsyncConnection, now: datetime, limit: int = 100,
              sender: Sender | None = None) -> list[LedgerEntry]:
    """What a sender may claim now: retries and deferrals whose time came, replays, fresh
    keys whose bus record was lost, claims whose lease expired, and claims of senders that
    stopped beating (crashed processes)."""
    ready = sa.and_(_N.state.in_(CLAIMABLE), _N.next_attempt_at <= now)
    if sender is not None:
        ready = sa.or_(ready, sender.others_dead(now))
    q = (sa.select(*_COLS).where(ready).order_by(_N.next_attempt_at).limit(limit))
    return [_entry(r) for r in await conn.execute(q)]


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    value = (await conn.execute(sa.select(sa.func.min(_N.next_attempt_at))
                                .where(_N.state.in_(CLAIMABLE)))).scalar()
    return value if isinstance(value, datetime) else None


async def count_by_state(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(sa.select(_N.state, sa.func.count()).group_by(_N.state))
    return {r[0]: int(r[1]) for r in rows}


async def count_by_channel_state(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    rows = await conn.execute(sa.select(_N.channel, _N.state, sa.func.count())
                              .group_by(_N.channel, _N.state))
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def count_suppressed_by_reason(conn: AsyncConnection) -> dict[str, int]:
    """Suppressed notifications by reason, a silence's counted as `silenced` (the bounded
    reasons the metric `capmon_notifications_suppressed_total` uses)."""
    rows = await conn.execute(sa.select(_N.last_error, sa.func.count())
                              .where(_N.state == State.SUPPRESSED).group_by(_N.last_error))
    out: dict[str, int] = {}
    for reason, n in rows:
        label = (reason or "unknown").split(":")[0]
        out[label] = out.get(label, 0) + int(n)
    return out
