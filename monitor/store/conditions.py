"""Conditions in the store: the latest revision per id, and the history of every revision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.events import Condition, Kind, Status
from monitor.store.engine import insert_ignore
from monitor.store.schema import condition_history, conditions

_OPEN = (Status.SCHEDULED.value, Status.ACTIVE.value)


def _row(c: Condition, now: datetime) -> dict[str, object]:
    return {
        "id": c.id, "kind": c.kind.value, "severity": c.severity.value, "status": c.status.value,
        "revision": c.revision, "content_hash": c.content_hash(),
        "window_start": c.window.start, "window_end": c.window.end,
        "observed_at": c.observed_at, "body": c.model_dump(mode="json"), "updated_at": now,
    }


async def get(conn: AsyncConnection, condition_id: str) -> Condition | None:
    row = (await conn.execute(
        sa.select(conditions.c.body).where(conditions.c.id == condition_id))).first()
    return None if row is None else Condition.model_validate(row.body)


async def record(conn: AsyncConnection, c: Condition, now: datetime) -> Condition | None:
    """Store a revision; return the revision it replaces as latest (None if new).

    A revision older than the stored one is kept in history but does not replace the latest,
    so redelivered or reordered messages never roll a condition back.
    """
    previous = await get(conn, c.id)
    await _write(conn, c, now, None if previous is None else previous.revision)
    return previous


async def record_revision(conn: AsyncConnection, c: Condition, now: datetime) -> int | None:
    """`record` for the hot path (decide, every revision): no parsing of the stored body;
    returns the previous latest revision (None if the condition is new)."""
    previous: int | None = (await conn.execute(sa.select(conditions.c.revision).where(
        conditions.c.id == c.id))).scalar_one_or_none()
    await _write(conn, c, now, previous)
    return previous


async def _write(conn: AsyncConnection, c: Condition, now: datetime,
                 previous: int | None) -> None:
    # A redelivered revision is already in history: one INSERT that ignores the duplicate.
    await conn.execute(insert_ignore(conn, condition_history).values(
        condition_id=c.id, revision=c.revision, content_hash=c.content_hash(),
        status=c.status.value, observed_at=c.observed_at, body=c.model_dump(mode="json")))
    if previous is None:
        await conn.execute(conditions.insert().values(**_row(c, now)))
    elif c.revision > previous:
        await conn.execute(
            conditions.update().where(conditions.c.id == c.id).values(**_row(c, now)))


async def list_conditions(
    conn: AsyncConnection,
    *,
    open_only: bool = False,
    kinds: Sequence[Kind] = (),
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    statuses: Sequence[str] = (),
) -> list[Condition]:
    q = sa.select(conditions.c.body).order_by(conditions.c.observed_at.desc(), conditions.c.id)
    if open_only:
        q = q.where(conditions.c.status.in_(_OPEN))
    if statuses:
        q = q.where(conditions.c.status.in_(list(statuses)))
    if kinds:
        q = q.where(conditions.c.kind.in_([k.value for k in kinds]))
    if since is not None:
        q = q.where(conditions.c.observed_at >= since)
    rows = await conn.execute(q.limit(limit).offset(offset))
    return [Condition.model_validate(r.body) for r in rows]


async def history(conn: AsyncConnection, condition_id: str) -> list[Condition]:
    rows = await conn.execute(
        sa.select(condition_history.c.body)
        .where(condition_history.c.condition_id == condition_id)
        .order_by(condition_history.c.revision))
    return [Condition.model_validate(r.body) for r in rows]


async def list_history(
    conn: AsyncConnection,
    *,
    condition_id: str | None = None,
    kinds: Sequence[Kind] = (),
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Condition]:
    """Every stored revision, newest observation first, filtered."""
    h = condition_history
    q = sa.select(h.c.body).order_by(h.c.observed_at.desc(), h.c.condition_id, h.c.revision)
    if condition_id is not None:
        q = q.where(h.c.condition_id == condition_id)
    if kinds:
        # The history table has no kind column; condition ids carry no kind either, so join.
        q = q.join(conditions, conditions.c.id == h.c.condition_id).where(
            conditions.c.kind.in_([k.value for k in kinds]))
    if statuses:
        q = q.where(h.c.status.in_(list(statuses)))
    if since is not None:
        q = q.where(h.c.observed_at >= since)
    rows = await conn.execute(q.limit(limit).offset(offset))
    return [Condition.model_validate(r.body) for r in rows]


async def counts_by_kind_status(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    rows = await conn.execute(
        sa.select(conditions.c.kind, conditions.c.status, sa.func.count())
        .group_by(conditions.c.kind, conditions.c.status))
    return {(r[0], r[1]): int(r[2]) for r in rows}
