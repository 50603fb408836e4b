"""Decide's state in the store: condition views and threshold arming (migration 0002_decide).

Nothing decide needs survives only in memory: after a restart it reads these rows and
re-derives the same transitions with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.rules import OPEN, SUPERSEDED, View
from monitor.events import Condition
from monitor.store.schema import conditions, decide_thresholds, decide_views
from monitor.store.subscriptions import aware


def _view(row: Any) -> View:
    return View(condition_id=row[0], kind=row[1], status=row[2], facts=dict(row[3]),
                revision=int(row[4]), changed_at=aware(row[5]))


_VIEW_COLS = (decide_views.c.condition_id, decide_views.c.kind, decide_views.c.status,
              decide_views.c.facts, decide_views.c.revision, decide_views.c.changed_at)


async def get_view(conn: AsyncConnection, condition_id: str) -> View | None:
    row = (await conn.execute(sa.select(*_VIEW_COLS)
                              .where(decide_views.c.condition_id == condition_id))).first()
    return None if row is None else _view(row)


async def save_view(conn: AsyncConnection, view: View, now: datetime, *, exists: bool) -> None:
    values = {"kind": view.kind, "status": view.status, "facts": view.facts,
              "revision": view.revision, "changed_at": view.changed_at.astimezone(UTC),
              "updated_at": now}
    if exists:
        await conn.execute(decide_views.update()
                           .where(decide_views.c.condition_id == view.condition_id)
                           .values(**values))
    else:
        await conn.execute(decide_views.insert().values(condition_id=view.condition_id,
                                                        **values))


async def supersede(conn: AsyncConnection, condition_id: str, now: datetime) -> bool:
    """Close another condition's view silently: the superseding condition's own `issued`
    tells its subscribers (never called with the superseding condition's own id)."""
    result = await conn.execute(
        decide_views.update()
        .where(decide_views.c.condition_id == condition_id,
               decide_views.c.status.in_(tuple(OPEN)))
        .values(status=SUPERSEDED, changed_at=now, updated_at=now))
    return bool(result.rowcount)


async def open_views(conn: AsyncConnection) -> list[tuple[View, Condition]]:
    """Every condition decide still considers open, with its latest revision."""
    rows = await conn.execute(
        sa.select(*_VIEW_COLS, conditions.c.body)
        .join(conditions, conditions.c.id == decide_views.c.condition_id)
        .where(decide_views.c.status.in_(tuple(OPEN)))
        .order_by(decide_views.c.condition_id))
    return [(_view(r), Condition.model_validate(r[6])) for r in rows]


@dataclass(frozen=True)
class Arming:
    armed: bool
    episode: int


async def get_arming(conn: AsyncConnection, sub_id: str, threshold: str,
                     condition_id: str) -> Arming | None:
    row = (await conn.execute(sa.select(decide_thresholds.c.armed, decide_thresholds.c.episode)
                              .where(decide_thresholds.c.subscription_id == sub_id,
                                     decide_thresholds.c.threshold == threshold,
                                     decide_thresholds.c.condition_id == condition_id))).first()
    return None if row is None else Arming(armed=bool(row[0]), episode=int(row[1]))


async def set_arming(conn: AsyncConnection, sub_id: str, threshold: str, condition_id: str,
                     arming: Arming, now: datetime, *, exists: bool) -> None:
    if exists:
        await conn.execute(decide_thresholds.update().where(
            decide_thresholds.c.subscription_id == sub_id,
            decide_thresholds.c.threshold == threshold,
            decide_thresholds.c.condition_id == condition_id,
        ).values(armed=arming.armed, episode=arming.episode, updated_at=now))
    else:
        await conn.execute(decide_thresholds.insert().values(
            subscription_id=sub_id, threshold=threshold, condition_id=condition_id,
            armed=arming.armed, episode=arming.episode, updated_at=now))
