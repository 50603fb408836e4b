"""Silences in the store (`silences`; this module is its only writer), always by tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.silences import Silence, SilenceMatch, SilenceSpec, SilenceState
from monitor.store.schema import silences
from monitor.store.watched import Watched

_S = silences.c

# Decide keeps the silences in memory and reloads them when this changes
# (monitor/store/watched.py).
WATCH = Watched(silences)


def _silence(row: Any) -> Silence:
    return Silence(id=row.id, tenant_id=row.tenant_id,
                   match=SilenceMatch.model_validate(row.match), starts_at=row.starts_at,
                   ends_at=row.ends_at, created_by=row.created_by, comment=row.comment,
                   include_all_clear=row.include_all_clear, created_at=row.created_at,
                   updated_at=row.updated_at)


async def create(conn: AsyncConnection, tenant_id: str, spec: SilenceSpec,
                 now: datetime) -> Silence:
    s = Silence(id=str(uuid.uuid4()), tenant_id=tenant_id, match=spec.match,
                starts_at=spec.starts_at or now, ends_at=spec.ends_at,
                created_by=spec.created_by, comment=spec.comment,
                include_all_clear=spec.include_all_clear, created_at=now, updated_at=now)
    await conn.execute(silences.insert().values(
        **s.model_dump(exclude={"match"}), match=s.match.model_dump(mode="json")))
    WATCH.changed()
    return s


async def get(conn: AsyncConnection, silence_id: str, tenant_id: str) -> Silence | None:
    row = (await conn.execute(sa.select(silences).where(
        _S.id == silence_id, _S.tenant_id == tenant_id))).first()
    return None if row is None else _silence(row)


async def list_silences(conn: AsyncConnection, tenant_id: str, now: datetime, *,
                        state: SilenceState | None = None, limit: int = 100,
                        offset: int = 0) -> list[Silence]:
    q = sa.select(silences).where(_S.tenant_id == tenant_id)
    if state is SilenceState.PENDING:
        q = q.where(_S.starts_at > now)
    elif state is SilenceState.ACTIVE:
        q = q.where(_S.starts_at <= now, _S.ends_at > now)
    elif state is SilenceState.EXPIRED:
        q = q.where(_S.ends_at <= now)
    rows = await conn.execute(q.order_by(_S.ends_at.desc(), _S.id).limit(limit).offset(offset))
    return [_silence(r) for r in rows]


async def unexpired(conn: AsyncConnection, now: datetime) -> list[Silence]:
    """Decide's read: every silence in force now or later, of every tenant, in one statement
    (decide keeps them beside its subscription index and refreshes them with it)."""
    rows = await conn.execute(sa.select(silences).where(_S.ends_at > now)
                              .order_by(_S.created_at, _S.id))
    return [_silence(r) for r in rows]


async def expire(conn: AsyncConnection, silence_id: str, tenant_id: str,
                 now: datetime) -> Silence | None:
    """End it now (a pending one never starts); an expired one is left as it ended."""
    s = await get(conn, silence_id, tenant_id)
    if s is None or s.state(now) is SilenceState.EXPIRED:
        return s
    starts = min(s.starts_at, now)
    await conn.execute(silences.update().where(_S.id == s.id).values(
        starts_at=starts, ends_at=now, updated_at=now))
    WATCH.changed()
    return s.model_copy(update={"starts_at": starts, "ends_at": now, "updated_at": now})


async def delete(conn: AsyncConnection, silence_id: str, tenant_id: str) -> bool:
    result = await conn.execute(silences.delete().where(
        _S.id == silence_id, _S.tenant_id == tenant_id))
    WATCH.changed()
    return bool(result.rowcount)
