"""Decide's state in the store: condition views and threshold arming (migration 0002_decide).

Nothing decide needs survives only in memory: after a restart it reads these rows and
re-derives the same transitions with the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.decide.rules import OPEN, SUPERSEDED, View
from monitor.events import Condition
from monitor.store.engine import in_chunks
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


async def get_armings(conn: AsyncConnection, condition_id: str,
                      sub_ids: Iterable[str]) -> dict[tuple[str, str], Arming]:
    """Every threshold's arming on this condition for these subscriptions, by (subscription,
    threshold): one query per 500 subscriptions."""
    t = decide_thresholds.c
    out: dict[tuple[str, str], Arming] = {}
    for chunk in in_chunks(sub_ids):
        rows = await conn.execute(sa.select(t.subscription_id, t.threshold, t.armed, t.episode)
                                  .where(t.condition_id == condition_id,
                                         t.subscription_id.in_(chunk)))
        out.update(((r[0], r[1]), Arming(bool(r[2]), int(r[3]))) for r in rows)
    return out


async def set_armings(conn: AsyncConnection, condition_id: str,
                      changes: Sequence[tuple[str, str, Arming, bool]], now: datetime) -> None:
    """Write (subscription, threshold, arming, row exists) for one condition: one insert
    and one update, however many."""
    t = decide_thresholds.c
    new = [{"subscription_id": sid, "threshold": key, "condition_id": condition_id,
            "armed": a.armed, "episode": a.episode, "updated_at": now}
           for sid, key, a, exists in changes if not exists]
    old = [{"a_sub": sid, "a_key": key, "a_armed": a.armed, "a_episode": a.episode}
           for sid, key, a, exists in changes if exists]
    if new:
        await conn.execute(decide_thresholds.insert(), new)
    if old:
        b = sa.bindparam
        await conn.execute(
            decide_thresholds.update()
            .where(t.subscription_id == b("a_sub"), t.threshold == b("a_key"),
                   t.condition_id == condition_id)
            .values(armed=b("a_armed"), episode=b("a_episode"), updated_at=now), old)
