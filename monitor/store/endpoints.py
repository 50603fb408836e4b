"""Delivery endpoints as deliver sees them: a subscription's target, secrets and health.

A subscription is one endpoint (its own URL, phone or address, and webhook secret). Deliver
reads the target and secrets here at send time (secrets never travel on the bus), tracks a run
of failures so an endpoint failing for days can be disabled, and records a recipient's opt-out
(SMS STOP, email unsubscribe, a carrier's 21610) for the address; the status itself is written
by `monitor.store.subscriptions.set_status`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store import subscriptions as sub_store
from monitor.store.engine import in_chunks, insert_ignore
from monitor.store.schema import endpoint_health, opt_outs, sms_inbound, subscriptions


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


_ENDPOINT_COLS = (subscriptions.c.id, subscriptions.c.tenant_id, subscriptions.c.name,
                  subscriptions.c.channel_type, subscriptions.c.target, subscriptions.c.secret,
                  subscriptions.c.previous_secret, subscriptions.c.previous_secret_expires_at,
                  subscriptions.c.status, subscriptions.c.status_reason)


def _endpoint(row: Any, now: datetime) -> Endpoint:
    secrets = [row.secret] if row.secret else []
    expires = _aware(row.previous_secret_expires_at)
    if row.previous_secret and (expires is None or expires > now):
        secrets.append(row.previous_secret)
    return Endpoint(subscription_id=row.id, tenant_id=row.tenant_id, name=row.name,
                    channel_type=row.channel_type, target=row.target, secrets=tuple(secrets),
                    status=row.status, status_reason=row.status_reason)


async def get_endpoint(conn: AsyncConnection, subscription_id: str,
                       now: datetime) -> Endpoint | None:
    return (await get_endpoints(conn, [subscription_id], now)).get(subscription_id)


async def get_endpoints(conn: AsyncConnection, subscription_ids: Iterable[str],
                        now: datetime) -> dict[str, Endpoint]:
    """The endpoints of these subscriptions (one query per 500); deleted ones are absent."""
    out: dict[str, Endpoint] = {}
    for chunk in in_chunks(subscription_ids):
        rows = await conn.execute(sa.select(*_ENDPOINT_COLS)
                                  .where(subscriptions.c.id.in_(chunk)))
        out.update((r.id, _endpoint(r, now)) for r in rows)
    return out


async def opt_out(conn: AsyncConnection, subscription_id: str, reason: str,
                  now: datetime) -> bool:
    """The recipient's own unsubscribe (SMS STOP, one-click unsubscribe, a carrier's opt-out):
    the subscription turns `unsubscribed`; True if its status changed.

    It binds the address, not just this subscription, whatever the subscription's status was
    (its tenant may have set it `unsubscribed` already, which binds nothing). A tenant's own
    unsubscribe goes through `subscriptions.set_status` alone.
    """
    changed = await sub_store.set_status(conn, subscription_id, sub_store.UNSUBSCRIBED, now,
                                         reason=reason)
    row = (await conn.execute(sa.select(subscriptions.c.channel_type, subscriptions.c.target)
                              .where(subscriptions.c.id == subscription_id))).first()
    if row is not None:
        await record_opt_out(conn, row.channel_type, row.target, reason, now)
    return changed


def _address(channel: str, target: str) -> str:
    # A mail address is one person whatever the case of it: `Desk@cca.example` must not
    # slip past the opt-out of `desk@cca.example`.
    return target.lower() if channel == "email" else target


def _is_address(channel: str, target: str) -> sa.ColumnElement[bool]:
    column = sa.func.lower(opt_outs.c.target) if channel == "email" else opt_outs.c.target
    return sa.and_(opt_outs.c.channel == channel, column == _address(channel, target))


async def record_opt_out(conn: AsyncConnection, channel: str, target: str, reason: str,
                         now: datetime) -> None:
    # The first opt-out's reason stands; a later one for the same address changes nothing.
    await conn.execute(insert_ignore(conn, opt_outs).values(
        channel=channel, target=_address(channel, target), reason=reason[:500],
        created_at=now))


async def first_inbound(conn: AsyncConnection, sid: str, phone: str, keyword: str,
                        received_at: datetime) -> bool:
    """Remember an inbound message by its MessageSid, with when Twilio received it; False if
    it was seen before (Twilio retrying, or a captured signed request replayed): act on a
    message once."""
    result = await conn.execute(insert_ignore(conn, sms_inbound).values(
        sid=sid[:64], phone=phone[:32], keyword=keyword[:16], received_at=received_at))
    return bool(result.rowcount)


async def stopped_since(conn: AsyncConnection, phone: str, received_at: datetime,
                        stop_words: Iterable[str]) -> bool:
    """Whether Twilio received a STOP from this phone after `received_at`: a START older
    than the number's last STOP must not undo it, however late it arrives."""
    i = sms_inbound.c
    found = await conn.execute(sa.select(i.sid).where(
        i.phone == phone[:32], i.keyword.in_(sorted(stop_words)),
        i.received_at > received_at).limit(1))
    return found.first() is not None


async def clear_opt_out(conn: AsyncConnection, channel: str, target: str) -> None:
    """The recipient opted in again (SMS START)."""
    await conn.execute(opt_outs.delete().where(_is_address(channel, target)))


async def opted_out(conn: AsyncConnection, channel: str, target: str) -> str | None:
    """Why this address opted out, or None."""
    reason: str | None = (await conn.execute(sa.select(opt_outs.c.reason).where(
        _is_address(channel, target)).limit(1))).scalar()
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

async def record_successes(conn: AsyncConnection, subscription_ids: Iterable[str],
                           now: datetime) -> None:
    """End the failure runs of these endpoints (two statements however many)."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return
    h = endpoint_health.c
    await conn.execute(endpoint_health.update().where(h.subscription_id.in_(ids))
                       .values(failing_since=None, consecutive_failures=0,
                               last_success_at=now))
    await conn.execute(insert_ignore(conn, endpoint_health, ["subscription_id"]),
                       [{"subscription_id": sid, "consecutive_failures": 0,
                         "last_success_at": now} for sid in ids])


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
