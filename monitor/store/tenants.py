"""Tenants (CCAs) and their API keys. Keys are random, shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.schema import api_keys, tenants

KEY_PREFIX = "cm_"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    admin_contact: str | None
    status: str
    created_at: datetime


def hash_key(api_key: str) -> str:
    # A header's raw non-UTF-8 bytes arrive as surrogates: hash them too (no key matches).
    return hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _tenant(row: Any) -> Tenant:
    return Tenant(id=row[0], name=row[1], admin_contact=row[2], status=row[3], created_at=row[4])


_COLS = (tenants.c.id, tenants.c.name, tenants.c.admin_contact, tenants.c.status,
         tenants.c.created_at)


async def create_tenant(conn: AsyncConnection, name: str, admin_contact: str | None,
                        now: datetime) -> tuple[Tenant, str]:
    """Create a tenant with one API key; returns the tenant and the key (shown once)."""
    tenant = Tenant(id=str(uuid.uuid4()), name=name, admin_contact=admin_contact,
                    status="active", created_at=now)
    await conn.execute(tenants.insert().values(
        id=tenant.id, name=name, admin_contact=admin_contact, status="active", created_at=now))
    key = await add_api_key(conn, tenant.id, now)
    return tenant, key


async def add_api_key(conn: AsyncConnection, tenant_id: str, now: datetime) -> str:
    key = new_api_key()
    await conn.execute(api_keys.insert().values(
        id=str(uuid.uuid4()), tenant_id=tenant_id, key_hash=hash_key(key),
        prefix=key[:10], created_at=now))
    return key


async def revoke_api_keys(conn: AsyncConnection, tenant_id: str, now: datetime,
                          *, except_hash: str | None = None) -> int:
    q = api_keys.update().where(api_keys.c.tenant_id == tenant_id,
                                api_keys.c.revoked_at.is_(None))
    if except_hash is not None:
        q = q.where(api_keys.c.key_hash != except_hash)
    result = await conn.execute(q.values(revoked_at=now))
    return int(result.rowcount or 0)


async def tenant_for_key(conn: AsyncConnection, api_key: str) -> Tenant | None:
    """The active tenant owning an unrevoked key, else None (a revoked key fails at once)."""
    row = (await conn.execute(
        sa.select(*_COLS)
        .join(api_keys, api_keys.c.tenant_id == tenants.c.id)
        .where(api_keys.c.key_hash == hash_key(api_key), api_keys.c.revoked_at.is_(None),
               tenants.c.status == "active"))).first()
    return None if row is None else _tenant(row)


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> Tenant | None:
    row = (await conn.execute(sa.select(*_COLS).where(tenants.c.id == tenant_id))).first()
    return None if row is None else _tenant(row)


async def list_tenants(conn: AsyncConnection) -> list[Tenant]:
    rows = await conn.execute(sa.select(*_COLS).order_by(tenants.c.created_at, tenants.c.name))
    return [_tenant(r) for r in rows]
