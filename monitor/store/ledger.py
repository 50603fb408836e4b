"""The notification ledger (DESIGN section 6): one row per notification key, one per attempt.

State machine: pending -> sending -> delivered | failed (will retry) | dead (gave up);
suppressed (decided but not sent: quiet hours, inhibited, paused). `admit` inserts a key once;
`claim` moves it to `sending` atomically so two deliverers never send the same key at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.notifications import Notification
from monitor.store.engine import insert_ignore
from monitor.store.schema import attempts, notifications

STATES = ("pending", "sending", "delivered", "failed", "dead", "suppressed")
SETTLED = ("delivered", "dead", "suppressed")


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    tenant_id: str
    subscription_id: str
    channel: str
    state: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    # attempt_count when the retry schedule last restarted (a replay); the schedule position
    # is attempt_count - attempt_base.
    attempt_base: int = 0

    def notification(self) -> Notification:
        return Notification.model_validate(self.payload)


_COLS = (notifications.c.key, notifications.c.tenant_id, notifications.c.subscription_id,
         notifications.c.channel, notifications.c.state, notifications.c.attempt_count,
         notifications.c.next_attempt_at, notifications.c.last_error, notifications.c.created_at,
         notifications.c.updated_at, notifications.c.delivered_at, notifications.c.payload,
         notifications.c.attempt_base)


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(*row)


async def admit(conn: AsyncConnection, n: Notification, now: datetime,
                state: str = "pending", reason: str | None = None) -> bool:
    """Insert the key if new; False if the ledger already has it (a duplicate)."""
    try:
        async with conn.begin_nested():
            await conn.execute(notifications.insert().values(
                key=n.key, tenant_id=n.tenant_id, subscription_id=n.subscription_id,
                channel=n.channel.type, state=state, payload=n.model_dump(mode="json"),
                attempt_count=0, next_attempt_at=now if state == "pending" else None,
                last_error=reason, observed_at=n.earliest_observed_at, created_at=now,
                updated_at=now))
    except IntegrityError:
        return False
    return True


async def admit_many(conn: AsyncConnection, items: Sequence[Notification], now: datetime,
                     state: str = "pending") -> int:
    """Admit many keys in one statement; falls back to one by one if any is a duplicate.

    Returns how many were new.
    """
    if not items:
        return 0
    rows = [{"key": n.key, "tenant_id": n.tenant_id, "subscription_id": n.subscription_id,
             "channel": n.channel.type, "state": state, "payload": n.model_dump(mode="json"),
             "attempt_count": 0, "next_attempt_at": now if state == "pending" else None,
             "last_error": None, "observed_at": n.earliest_observed_at, "created_at": now,
             "updated_at": now} for n in items]
    try:
        async with conn.begin_nested():
            await conn.execute(notifications.insert(), rows)
        return len(rows)
    except IntegrityError:
        return sum([await admit(conn, n, now, state) for n in items])


async def get(conn: AsyncConnection, key: str, tenant_id: str | None = None) -> LedgerEntry | None:
    q = sa.select(*_COLS).where(notifications.c.key == key)
    if tenant_id is not None:
        q = q.where(notifications.c.tenant_id == tenant_id)
    row = (await conn.execute(q)).first()
    return None if row is None else _entry(row)


async def claim(conn: AsyncConnection, key: str, now: datetime) -> bool:
    """pending/failed -> sending, atomically; False if someone else has it or it is settled."""
    result = await conn.execute(
        notifications.update()
        .where(notifications.c.key == key, notifications.c.state.in_(("pending", "failed")))
        .values(state="sending", updated_at=now))
    return bool(result.rowcount)


async def settle(conn: AsyncConnection, key: str, state: str, now: datetime, *,
                 next_attempt_at: datetime | None = None, error: str | None = None) -> None:
    if state not in STATES:
        raise ValueError(f"unknown ledger state {state!r}")
    values: dict[str, Any] = {"state": state, "updated_at": now,
                              "next_attempt_at": next_attempt_at, "last_error": error}
    if state == "delivered":
        values["delivered_at"] = now
    await conn.execute(notifications.update().where(notifications.c.key == key).values(**values))


async def record_attempt(conn: AsyncConnection, key: str, *, at: datetime, channel: str,
                         outcome: str, status_code: int | None = None,
                         provider_error: str | None = None, error: str | None = None,
                         latency_s: float | None = None) -> int:
    """Append an attempt row and bump the notification's attempt count; returns its number."""
    count = (await conn.execute(sa.select(notifications.c.attempt_count)
                                .where(notifications.c.key == key))).scalar_one()
    number = int(count) + 1
    await conn.execute(attempts.insert().values(
        notification_key=key, attempt_no=number, attempted_at=at, channel=channel,
        outcome=outcome, status_code=status_code, provider_error=provider_error,
        error=error[:1000] if error else None, latency_s=latency_s))
    await conn.execute(notifications.update().where(notifications.c.key == key)
                       .values(attempt_count=number))
    return number


async def list_entries(
    conn: AsyncConnection, *, tenant_id: str | None = None, subscription_id: str | None = None,
    states: Sequence[str] = (), channel: str | None = None, since: datetime | None = None,
    limit: int = 100, offset: int = 0, include_tests: bool = True,
) -> list[LedgerEntry]:
    q = sa.select(*_COLS).order_by(notifications.c.created_at.desc(), notifications.c.key)
    if not include_tests:
        # IS NOT TRUE, so a payload without the field counts as not a test.
        q = q.where(notifications.c.payload["test"].as_boolean().is_not(True))
    if tenant_id is not None:
        q = q.where(notifications.c.tenant_id == tenant_id)
    if subscription_id is not None:
        q = q.where(notifications.c.subscription_id == subscription_id)
    if states:
        q = q.where(notifications.c.state.in_(list(states)))
    if channel is not None:
        q = q.where(notifications.c.channel == channel)
    if since is not None:
        q = q.where(notifications.c.created_at >= since)
    return [_entry(r) for r in await conn.execute(q.limit(limit).offset(offset))]


async def due(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[LedgerEntry]:
    """Notifications whose next attempt is due (retries persisted across restarts)."""
    q = (sa.select(*_COLS)
         .where(notifications.c.state.in_(("pending", "failed")),
                notifications.c.next_attempt_at <= now)
         .order_by(notifications.c.next_attempt_at).limit(limit))
    return [_entry(r) for r in await conn.execute(q)]


async def attempts_for(conn: AsyncConnection, key: str) -> list[dict[str, Any]]:
    rows = await conn.execute(sa.select(attempts).where(attempts.c.notification_key == key)
                              .order_by(attempts.c.attempt_no))
    return [dict(r._mapping) for r in rows]


async def count_by_state(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(sa.select(notifications.c.state, sa.func.count())
                              .group_by(notifications.c.state))
    return {r[0]: int(r[1]) for r in rows}


# -- deliver: leases, retries, replay ---------------------------------------------------------

async def claim_due(conn: AsyncConnection, key: str, now: datetime, lease_until: datetime) -> bool:
    """Claim a key whose attempt is due, with a lease; False if it is not due or not ours.

    Due means pending/failed with `next_attempt_at` reached, or `sending` whose lease (held in
    `next_attempt_at` while sending) expired because its sender died mid-send. That last case
    is the only way a notification is sent twice, with the same idempotency key.
    """
    n = notifications.c
    due = sa.or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now)
    claimable = sa.or_(sa.and_(n.state.in_(("pending", "failed")), due),
                       sa.and_(n.state == "sending", n.next_attempt_at <= now))
    result = await conn.execute(notifications.update().where(n.key == key, claimable)
                                .values(state="sending", next_attempt_at=lease_until,
                                        updated_at=now))
    return bool(result.rowcount)


async def due_or_stale(conn: AsyncConnection, now: datetime, limit: int = 100) -> list[LedgerEntry]:
    """Retries that are due, and claims whose lease expired (crashed senders)."""
    n = notifications.c
    q = (sa.select(*_COLS)
         .where(n.state.in_(("pending", "failed", "sending")), n.next_attempt_at <= now)
         .order_by(n.next_attempt_at).limit(limit))
    return [_entry(r) for r in await conn.execute(q)]


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    n = notifications.c
    value = (await conn.execute(sa.select(sa.func.min(n.next_attempt_at))
                                .where(n.state.in_(("pending", "failed", "sending"))))).scalar()
    return value if isinstance(value, datetime) else None


async def reopen(conn: AsyncConnection, key: str, now: datetime, *,
                 tenant_id: str | None = None) -> bool:
    """Replay: a dead, failed or delivered key goes back to pending with a fresh schedule."""
    n = notifications.c
    q = notifications.update().where(n.key == key, n.state.in_(("dead", "failed", "delivered")))
    if tenant_id is not None:
        q = q.where(n.tenant_id == tenant_id)
    result = await conn.execute(q.values(state="pending", next_attempt_at=now, updated_at=now,
                                         attempt_base=n.attempt_count, last_error=None))
    return bool(result.rowcount)


async def count_by_channel_state(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    rows = await conn.execute(sa.select(notifications.c.channel, notifications.c.state,
                                        sa.func.count())
                              .group_by(notifications.c.channel, notifications.c.state))
    return {(r[0], r[1]): int(r[2]) for r in rows}


@dataclass(frozen=True)
class Claim:
    attempt_count: int
    attempt_base: int


async def admit_and_claim(conn: AsyncConnection, n: Notification, now: datetime,
                          lease_until: datetime, *, admit_first: bool = True) -> Claim | None:
    """Admit the key if new (pending, due now), then claim it if due (see `claim_due`).

    Two statements in the caller's transaction; None when the key is not ours to send now.
    """
    if admit_first:
        await conn.execute(insert_ignore(conn, notifications, ["key"]).values(
            key=n.key, tenant_id=n.tenant_id, subscription_id=n.subscription_id,
            channel=n.channel.type, state="pending", payload=n.model_dump(mode="json"),
            attempt_count=0, attempt_base=0, next_attempt_at=now,
            observed_at=n.earliest_observed_at, created_at=now, updated_at=now))
    c = notifications.c
    due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)
    claimable = sa.or_(sa.and_(c.state.in_(("pending", "failed")), due),
                       sa.and_(c.state == "sending", c.next_attempt_at <= now))
    row = (await conn.execute(
        notifications.update().where(c.key == n.key, claimable)
        .values(state="sending", next_attempt_at=lease_until, updated_at=now)
        .returning(c.attempt_count, c.attempt_base))).first()
    return None if row is None else Claim(int(row[0]), int(row[1]))


async def finish_attempt(conn: AsyncConnection, key: str, number: int, *, at: datetime,
                         channel: str, outcome: str, state: str, now: datetime,
                         next_attempt_at: datetime | None, status_code: int | None = None,
                         provider_error: str | None = None, error: str | None = None,
                         latency_s: float | None = None) -> None:
    """Record attempt `number` (the claim holder knows it) and settle the key: two statements."""
    if state not in STATES:
        raise ValueError(f"unknown ledger state {state!r}")
    await conn.execute(attempts.insert().values(
        notification_key=key, attempt_no=number, attempted_at=at, channel=channel,
        outcome=outcome, status_code=status_code, provider_error=provider_error,
        error=error[:1000] if error else None, latency_s=latency_s))
    values: dict[str, Any] = {"state": state, "attempt_count": number, "updated_at": now,
                              "next_attempt_at": next_attempt_at, "last_error": error}
    if state == "delivered":
        values["delivered_at"] = now
    await conn.execute(notifications.update().where(notifications.c.key == key).values(**values))
