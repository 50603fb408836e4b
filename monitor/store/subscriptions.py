"""Subscriptions in the store: the validated spec as JSON plus the columns queries need.

Every function that a tenant can reach takes `tenant_id` and filters on it, so one tenant can
never see or change another's subscriptions. The status column is authoritative and
`set_status` here is its one writer, for the tenant (API, CLI) and for the recipient and the
channels alike (SMS STOP, one-click unsubscribe, deliver disabling an endpoint, through
`monitor.store.endpoints`); the spec JSON is stored without it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.schema import subscriptions
from monitor.store.watched import Watched
from monitor.subscriptions import Subscription, SubscriptionSpec, SubStatus, new_webhook_secret

ACTIVE: SubStatus = "active"
UNSUBSCRIBED: SubStatus = "unsubscribed"
DISABLED: SubStatus = "disabled"
STATUSES: tuple[str, ...] = get_args(SubStatus)

# Decide's index reloads when this changes (monitor/store/watched.py).
WATCH = Watched(subscriptions)

_COLS = (subscriptions.c.id, subscriptions.c.tenant_id, subscriptions.c.spec,
         subscriptions.c.status, subscriptions.c.status_reason, subscriptions.c.created_at,
         subscriptions.c.updated_at)


@dataclass(frozen=True)
class StoredSubscription:
    id: str
    tenant_id: str
    spec: SubscriptionSpec
    status_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def status(self) -> str:
        return self.spec.status

    def public(self, secret: str | None = None) -> Subscription:
        return Subscription(**self.spec.model_dump(), id=self.id, tenant_id=self.tenant_id,
                            created_at=self.created_at, updated_at=self.updated_at,
                            status_reason=self.status_reason, secret=secret)


def aware(value: datetime) -> datetime:
    """SQLite returns timezone-aware columns naive; capmon stores them in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _row(row: Any) -> StoredSubscription:
    spec = SubscriptionSpec.model_validate({**row.spec, "status": row.status})
    return StoredSubscription(id=row.id, tenant_id=row.tenant_id, spec=spec,
                              status_reason=row.status_reason, created_at=aware(row.created_at),
                              updated_at=aware(row.updated_at))


def _spec_json(spec: SubscriptionSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"status"})


async def create(conn: AsyncConnection, tenant_id: str, spec: SubscriptionSpec,
                 now: datetime, *, sub_id: str | None = None,
                 ) -> tuple[StoredSubscription, str | None]:
    """Insert a subscription; returns it and its webhook secret (None for SMS/email)."""
    secret = new_webhook_secret() if spec.channel.type == "webhook" else None
    sub_id = sub_id or str(uuid.uuid4())
    await conn.execute(subscriptions.insert().values(
        id=sub_id, tenant_id=tenant_id, name=spec.name, spec=_spec_json(spec),
        channel_type=spec.channel.type, target=spec.target(), secret=secret,
        status=spec.status, created_at=now, updated_at=now))
    WATCH.changed()
    return StoredSubscription(id=sub_id, tenant_id=tenant_id, spec=spec, status_reason=None,
                              created_at=now, updated_at=now), secret


async def get(conn: AsyncConnection, sub_id: str,
              tenant_id: str | None = None) -> StoredSubscription | None:
    q = sa.select(*_COLS).where(subscriptions.c.id == sub_id)
    if tenant_id is not None:
        q = q.where(subscriptions.c.tenant_id == tenant_id)
    row = (await conn.execute(q)).first()
    return None if row is None else _row(row)


async def not_owned(conn: AsyncConnection, tenant_id: str, sub_ids: list[str]) -> list[str]:
    """Those of `sub_ids` that are not this tenant's subscriptions, in the order given."""
    if not sub_ids:
        return []
    owned = set((await conn.execute(sa.select(subscriptions.c.id).where(
        subscriptions.c.id.in_(sub_ids), subscriptions.c.tenant_id == tenant_id))).scalars())
    return [s for s in sub_ids if s not in owned]


async def list_for(conn: AsyncConnection, tenant_id: str | None, *, status: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[StoredSubscription]:
    q = sa.select(*_COLS).order_by(subscriptions.c.created_at, subscriptions.c.id)
    if tenant_id is not None:
        q = q.where(subscriptions.c.tenant_id == tenant_id)
    if status is not None:
        q = q.where(subscriptions.c.status == status)
    return [_row(r) for r in await conn.execute(q.limit(limit).offset(offset))]


async def active(conn: AsyncConnection) -> list[StoredSubscription]:
    """Every active subscription (what decide indexes)."""
    q = sa.select(*_COLS).where(subscriptions.c.status == ACTIVE)
    return [_row(r) for r in await conn.execute(q)]


async def replace(conn: AsyncConnection, sub_id: str, tenant_id: str, spec: SubscriptionSpec,
                  now: datetime, *, status: str | None = None, reason: str | None = None,
                  only_from: str | None = None,
                  ) -> tuple[StoredSubscription, str | None] | None:
    """Replace the spec; a subscription that becomes a webhook gets a new secret (returned).

    The status and its reason change only when `status` is given (else `spec.status` is
    ignored and both are kept: an opt-out survives an edit). `only_from` makes the write
    conditional on the current status; None is returned when it (or the row) is not there.
    """
    current = (await conn.execute(
        sa.select(subscriptions.c.channel_type, subscriptions.c.secret, subscriptions.c.created_at)
        .where(subscriptions.c.id == sub_id, subscriptions.c.tenant_id == tenant_id))).first()
    if current is None:
        return None
    new_secret: str | None = None
    secret = current.secret
    if spec.channel.type == "webhook" and secret is None:
        secret = new_secret = new_webhook_secret()
    elif spec.channel.type != "webhook":
        secret = None
    values: dict[str, Any] = dict(
        name=spec.name, spec=_spec_json(spec), channel_type=spec.channel.type,
        target=spec.target(), secret=secret, updated_at=now)
    if status is not None:
        values.update(status=status, status_reason=reason)
    q = subscriptions.update().where(subscriptions.c.id == sub_id,
                                     subscriptions.c.tenant_id == tenant_id)
    if only_from is not None:
        q = q.where(subscriptions.c.status == only_from)
    if not (await conn.execute(q.values(**values))).rowcount:
        return None
    WATCH.changed()
    stored = await get(conn, sub_id, tenant_id)
    return None if stored is None else (stored, new_secret)


async def set_status(conn: AsyncConnection, sub_id: str, status: str, now: datetime, *,
                     reason: str | None = None, tenant_id: str | None = None,
                     only_from: str | None = None) -> bool:
    """Change a subscription's status and its reason; True if it changed.

    A subscription already in `status` is left alone, reason included (the reason says who
    opted out). This writes whatever it is told: who may make which change is the caller's
    rule (a tenant may not undo a recipient's opt-out: the API; a recipient's opt-out also
    binds the address: `endpoints.opt_out`). `only_from` writes only if the status is still
    the one the caller checked; `tenant_id` confines it to that tenant's subscriptions.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown subscription status {status!r}")
    q = subscriptions.update().where(subscriptions.c.id == sub_id,
                                     subscriptions.c.status != status)
    if tenant_id is not None:
        q = q.where(subscriptions.c.tenant_id == tenant_id)
    if only_from is not None:
        q = q.where(subscriptions.c.status == only_from)
    result = await conn.execute(q.values(status=status, status_reason=reason, updated_at=now))
    changed = bool(result.rowcount)
    if changed:
        WATCH.changed()
    return changed


async def delete(conn: AsyncConnection, sub_id: str, tenant_id: str | None) -> bool:
    q = subscriptions.delete().where(subscriptions.c.id == sub_id)
    if tenant_id is not None:
        q = q.where(subscriptions.c.tenant_id == tenant_id)
    deleted = bool((await conn.execute(q)).rowcount)
    WATCH.changed()
    return deleted


async def secret_of(conn: AsyncConnection, sub_id: str) -> str | None:
    """The webhook signing secret as stored; never returned by the API after creation
    (deliver reads secrets with the endpoint, `endpoints.get_endpoints`)."""
    return (await conn.execute(sa.select(subscriptions.c.secret)
                               .where(subscriptions.c.id == sub_id))).scalar_one_or_none()


async def rotate_secret(conn: AsyncConnection, sub_id: str, tenant_id: str, now: datetime,
                        overlap: timedelta) -> tuple[str, datetime] | None:
    """Give a webhook subscription a new secret; the current one stays valid until
    `now + overlap` (deliver signs with both meanwhile, so a receiver can switch at leisure).
    Returns the new secret and when the old one expires; None if no such webhook."""
    s = subscriptions.c
    row = (await conn.execute(sa.select(s.secret).where(
        s.id == sub_id, s.tenant_id == tenant_id, s.channel_type == "webhook"))).first()
    if row is None or not row.secret:
        return None
    secret, until = new_webhook_secret(), now + overlap
    await conn.execute(subscriptions.update().where(s.id == sub_id).values(
        secret=secret, previous_secret=row.secret, previous_secret_expires_at=until,
        updated_at=now))
    return secret, until
