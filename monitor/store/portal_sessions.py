"""Tenant portal sessions: the only module that reads or writes `portal_sessions`.

A session is opened by signing in with a tenant API key and names that key: it ends when the
key is revoked or the tenant is no longer active, as the bearer API would refuse the key at
once. The cookie holds a random session id; the table holds only its sha256, so a copy of the
table signs nobody in. A session ends after `idle` without a request and `max_age` after it
was opened, whichever comes first, both judged on the caller's clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.schema import api_keys, portal_sessions, tenants
from monitor.store.tenants import Tenant, hash_key

_S = portal_sessions.c


@dataclass(frozen=True)
class PortalSession:
    tenant: Tenant
    csrf_token: str
    created_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


async def open_session(conn: AsyncConnection, api_key: str, now: datetime,
                       ) -> tuple[str, PortalSession] | None:
    """A new session for the active tenant owning this unrevoked key: its id (for the cookie,
    never stored) and the session; None if the key is not accepted."""
    row = (await conn.execute(
        sa.select(api_keys.c.id, tenants.c.id, tenants.c.name, tenants.c.admin_contact,
                  tenants.c.status, tenants.c.created_at)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.key_hash == hash_key(api_key), api_keys.c.revoked_at.is_(None),
               tenants.c.status == "active"))).first()
    if row is None:
        return None
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await conn.execute(portal_sessions.insert().values(
        id_hash=_hash(session_id), tenant_id=row[1], api_key_id=row[0], csrf_token=csrf,
        created_at=now, last_seen_at=now))
    tenant = Tenant(id=row[1], name=row[2], admin_contact=row[3], status=row[4],
                    created_at=row[5])
    return session_id, PortalSession(tenant=tenant, csrf_token=csrf, created_at=now)


async def session_for(conn: AsyncConnection, session_id: str, now: datetime, *,
                      idle: timedelta, max_age: timedelta) -> PortalSession | None:
    """The live session with this id, its last-seen time moved to `now`; None if there is
    none, it has expired, or its key or tenant no longer may sign in."""
    row = (await conn.execute(
        sa.select(tenants.c.id, tenants.c.name, tenants.c.admin_contact, tenants.c.status,
                  tenants.c.created_at, _S.csrf_token, _S.created_at)
        .join(tenants, tenants.c.id == _S.tenant_id)
        .join(api_keys, api_keys.c.id == _S.api_key_id)
        .where(_S.id_hash == _hash(session_id), _S.last_seen_at > now - idle,
               _S.created_at > now - max_age, api_keys.c.revoked_at.is_(None),
               tenants.c.status == "active"))).first()
    if row is None:
        return None
    await conn.execute(portal_sessions.update().where(_S.id_hash == _hash(session_id))
                       .values(last_seen_at=now))
    tenant = Tenant(id=row[0], name=row[1], admin_contact=row[2], status=row[3],
                    created_at=row[4])
    return PortalSession(tenant=tenant, csrf_token=row[5], created_at=row[6])


async def close_session(conn: AsyncConnection, session_id: str) -> bool:
    """Sign out: the session is gone, whatever its cookie says afterwards."""
    result = await conn.execute(portal_sessions.delete().where(_S.id_hash == _hash(session_id)))
    return bool(result.rowcount)


async def purge_expired(conn: AsyncConnection, now: datetime, *, idle: timedelta,
                        max_age: timedelta) -> int:
    """Drop sessions that can no longer be used (run at each sign-in, so the table stays
    as small as the number of people signed in)."""
    result = await conn.execute(portal_sessions.delete().where(
        sa.or_(_S.last_seen_at <= now - idle, _S.created_at <= now - max_age)))
    return int(result.rowcount or 0)
