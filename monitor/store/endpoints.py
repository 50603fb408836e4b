"""Delivery endpoints as deliver sees them: a subscription's target, secrets and health.

A subscription is one endpoint (its own URL, phone or address, and webhook secret). Deliver
reads the target and secrets here at send time (secrets never travel on the bus), tracks a run
of failures so an endpoint failing for days can be disabled, and changes a subscription's
status when a channel says so (410 Gone, SMS STOP, an invalid number, email unsubscribe).
Twilio message SIDs are tracked here so status callbacks find their notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.engine import insert_ignore
from monitor.store.schema import endpoint_health, opt_outs, sms_messages, subscriptions

ACTIVE = "active"
DISABLED = "disabled"
UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class Endpoint:
    subscription_id: str
    tenant_id: str
    name: str
    channel_type: str
    target: str
    # Webhook signing secrets valid now, current first (two during a rotation).
    secrets: tuple[str, ...]
    status: str
    status_reason: str | None


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def get_endpoint(conn: AsyncConnection, subscription_id: str,
                       now: datetime) -> Endpoint | None:
    s = subscriptions.c
    row = (await conn.execute(
        sa.select(s.id, s.tenant_id, s.name, s.channel_type, s.target, s.secret,
                  s.previous_secret, s.previous_secret_expires_at, s.status, s.status_reason)
        .where(s.id == subscription_id))).first()
    if row is None:
        return None
    secrets = [row.secret] if row.secret else []
    expires = _aware(row.previous_secret_expires_at)
    if row.previous_secret and (expires is None or expires > now):
        secrets.append(row.previous_secret)
    return Endpoint(subscription_id=row.id, tenant_id=row.tenant_id, name=row.name,
                    channel_type=row.channel_type, target=row.target, secrets=tuple(secrets),
                    status=row.status, status_reason=row.status_reason)


async def set_status(conn: AsyncConnection, subscription_id: str, status: str,
                     reason: str | None, now: datetime, *, only_from: str | None = None) -> bool:
    """Change a subscription's status; `only_from` makes it conditional. True if changed."""
    q = subscriptions.update().where(subscriptions.c.id == subscription_id,
                                     subscriptions.c.status != status)
    if only_from is not None:
        q = q.where(subscriptions.c.status == only_from)
    result = await conn.execute(q.values(status=status, status_reason=reason, updated_at=now))
    changed = bool(result.rowcount)
    if changed and status == UNSUBSCRIBED:
        # Every path here is the recipient's (STOP, one-click unsubscribe, carrier opt-out):
        # it binds the address, not just this subscription. (A tenant's own unsubscribe goes
        # through store.subscriptions.set_status and does not.)
        row = (await conn.execute(sa.select(subscriptions.c.channel_type,
                                            subscriptions.c.target)
                                  .where(subscriptions.c.id == subscription_id))).first()
        if row is not None:
            await record_opt_out(conn, row.channel_type, row.target, reason or status, now)
    return changed


async def record_opt_out(conn: AsyncConnection, channel: str, target: str, reason: str,
                         now: datetime) -> None:
    # The first opt-out's reason stands; a later one for the same address changes nothing.
    await conn.execute(insert_ignore(conn, opt_outs).values(
        channel=channel, target=target, reason=reason[:500], created_at=now))


async def clear_opt_out(conn: AsyncConnection, channel: str, target: str) -> None:
    """The recipient opted in again (SMS START)."""
    await conn.execute(opt_outs.delete().where(opt_outs.c.channel == channel,
                                               opt_outs.c.target == target))


async def opted_out(conn: AsyncConnection, channel: str, target: str) -> str | None:
    """Why this address opted out, or None."""
    reason: str | None = (await conn.execute(sa.select(opt_outs.c.reason).where(
        opt_outs.c.channel == channel, opt_outs.c.target == target))).scalar_one_or_none()
    return reason


async def opt_out_refusal(conn: AsyncConnection, channel: str, target: str) -> str | None:
    """Why a tenant may not subscribe this address (its recipient opted out), or None.

    The API and the CLI refuse with the same words."""
    if channel == "webhook":
        return None
    reason = await opted_out(conn, channel, target)
    if reason is None:
        return None
    how = ("the recipient can opt in again by texting START to the sending number"
           if channel == "sms" else "only the recipient can opt in again")
    return f"{target} opted out ({reason}); {how}"


async def subscriptions_for_target(conn: AsyncConnection, channel_type: str,
                                   target: str) -> list[tuple[str, str, str | None]]:
    """(id, status, status_reason) of every subscription sending to this phone or address."""
    rows = await conn.execute(
        sa.select(subscriptions.c.id, subscriptions.c.status, subscriptions.c.status_reason)
        .where(subscriptions.c.channel_type == channel_type, subscriptions.c.target == target))
    return [(r[0], r[1], r[2]) for r in rows]


# -- health: a run of failures ------------------------------------------------------------------

async def record_success(conn: AsyncConnection, subscription_id: str, now: datetime) -> None:
    h = endpoint_health.c
    result = await conn.execute(endpoint_health.update().where(h.subscription_id == subscription_id)
                                .values(failing_since=None, consecutive_failures=0,
                                        last_success_at=now))
    if not result.rowcount:
        await _insert_health(conn, subscription_id, last_success_at=now)


async def record_failure(conn: AsyncConnection, subscription_id: str, now: datetime,
                         error: str | None) -> datetime:
    """Count one failed attempt; returns when the current run of failures began."""
    h = endpoint_health.c
    result = await conn.execute(
        endpoint_health.update().where(h.subscription_id == subscription_id)
        .values(failing_since=sa.func.coalesce(h.failing_since, now),
                consecutive_failures=h.consecutive_failures + 1,
                last_failure_at=now, last_error=(error or "")[:500]))
    if not result.rowcount:
        await _insert_health(conn, subscription_id, failing_since=now, consecutive_failures=1,
                             last_failure_at=now, last_error=(error or "")[:500])
        return now
    since = (await conn.execute(sa.select(h.failing_since)
                                .where(h.subscription_id == subscription_id))).scalar_one()
    return _aware(since) or now


async def reset_failures(conn: AsyncConnection, subscription_id: str) -> None:
    """Forget a run of failures (a tenant re-enabling a disabled endpoint starts afresh, not
    one failure away from being disabled again)."""
    h = endpoint_health.c
    await conn.execute(endpoint_health.update().where(h.subscription_id == subscription_id)
                       .values(failing_since=None, consecutive_failures=0))


async def _insert_health(conn: AsyncConnection, subscription_id: str, **values: object) -> None:
    # Concurrent sends to one endpoint may race to create its row; the loser's count is
    # lost, which at worst delays auto-disable by one failure. It must not fail the attempt.
    try:
        async with conn.begin_nested():
            await conn.execute(endpoint_health.insert().values(subscription_id=subscription_id,
                                                               **values))
    except IntegrityError:
        pass


# -- Twilio message tracking ------------------------------------------------------------------

# Callbacks arrive out of order: a status only ever moves forward along this ranking.
_SMS_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
             "receiving": 3, "received": 4, "delivered": 5, "undelivered": 5, "failed": 5,
             "canceled": 5, "partially_delivered": 5, "read": 6}


@dataclass(frozen=True)
class SmsUpdate:
    notification_key: str
    attempt_no: int
    status: str
    error_code: str | None
    changed: bool

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")


async def record_sms_status(conn: AsyncConnection, sid: str, status: str,
                            error_code: str | None, now: datetime, *,
                            notification_key: str | None = None,
                            attempt_no: int | None = None) -> SmsUpdate | None:
    """Record what is known of a message: from the send (its 201) or from a status callback,
    whichever arrives first. Returns the message's status after the update, `changed=False`
    for a stale or repeated one, None for a SID we know nothing about."""
    m = sms_messages.c
    # FOR UPDATE serializes the send's bookkeeping and its callbacks on this message: the
    # later of the two then sees the other's status, so a failure callback that overtakes
    # the send is applied by whichever commits last (on SQLite, writers are serial anyway).
    row = (await conn.execute(sa.select(m.notification_key, m.attempt_no, m.status,
                                        m.error_code).where(m.sid == sid)
                              .with_for_update())).first()
    if row is None:
        if notification_key is None or attempt_no is None:
            return None
        try:
            async with conn.begin_nested():
                await conn.execute(sms_messages.insert().values(
                    sid=sid, notification_key=notification_key, attempt_no=attempt_no,
                    status=status, error_code=error_code, created_at=now, updated_at=now))
        except IntegrityError:
            # The send and its first callback raced to create the row: update it instead.
            return await record_sms_status(conn, sid, status, error_code, now)
        return SmsUpdate(notification_key, attempt_no, status, error_code, changed=True)
    if _SMS_RANK.get(status, -1) <= _SMS_RANK.get(row.status, 0):
        return SmsUpdate(row.notification_key, row.attempt_no, row.status, row.error_code,
                         changed=False)
    await conn.execute(sms_messages.update().where(m.sid == sid, m.status == row.status)
                       .values(status=status, error_code=error_code, updated_at=now))
    return SmsUpdate(row.notification_key, row.attempt_no, status, error_code, changed=True)
