"""Dedup and grouping: decide's notification log, in the store.

Every candidate's key is written once to `decide_items`; a key already there is a duplicate
(a redelivered revision, a replay, a re-derivation after restart) and goes no further.
Candidates for one subscriber that arrive within `group_wait` of each other, or within
`group_interval` of the subscriber's last notification, wait in one pending batch and leave
as one notification, like Alertmanager's aggregation groups: an escalation ladder becomes one
message, not five. Times come from the injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.stages import Candidate
from monitor.notifications import NotificationItem, group_key
from monitor.store.schema import decide_items
from monitor.store.subscriptions import aware as _aware

_CHUNK = 500


async def known(conn: AsyncConnection, keys: Iterable[str]) -> set[str]:
    """The keys among `keys` that decide has already handled."""
    keys = list(dict.fromkeys(keys))
    found: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        rows = await conn.execute(sa.select(decide_items.c.item_key)
                                  .where(decide_items.c.item_key.in_(keys[i:i + _CHUNK])))
        found.update(r[0] for r in rows)
    return found


def _payload(cand: Candidate) -> dict[str, Any]:
    return {"severity": cand.severity.value, "item": cand.item.model_dump(mode="json")}


async def add_suppressed(conn: AsyncConnection, cand: Candidate, now: datetime) -> None:
    await conn.execute(decide_items.insert().values(
        item_key=cand.key, subscription_id=cand.sub.id, tenant_id=cand.sub.tenant_id,
        state="suppressed", batch_key=cand.key, due_at=now, payload=_payload(cand),
        created_at=now, flushed_at=now))


async def due_times(conn: AsyncConnection, sub_ids: Iterable[str], now: datetime, *,
                    wait: timedelta, interval: timedelta) -> dict[str, datetime]:
    """`due_at` for many subscribers at once (two grouped queries, however many)."""
    ids = list(dict.fromkeys(sub_ids))
    out = {sid: now + wait for sid in ids}
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        last = await conn.execute(
            sa.select(decide_items.c.subscription_id, sa.func.max(decide_items.c.flushed_at))
            .where(decide_items.c.subscription_id.in_(chunk),
                   decide_items.c.state.in_(("batched", "sent")))
            .group_by(decide_items.c.subscription_id))
        for sid, flushed in last:
            if flushed is not None:
                out[sid] = max(out[sid], _aware(flushed) + interval)
        pending = await conn.execute(
            sa.select(decide_items.c.subscription_id, sa.func.min(decide_items.c.due_at))
            .where(decide_items.c.subscription_id.in_(chunk),
                   decide_items.c.state == "pending")
            .group_by(decide_items.c.subscription_id))
        for sid, due in pending:
            if due is not None:
                out[sid] = _aware(due)  # join the open batch
    return out


async def add_pending_many(conn: AsyncConnection, rows: list[tuple[Candidate, datetime]],
                           now: datetime) -> None:
    if not rows:
        return
    await conn.execute(decide_items.insert(), [
        {"item_key": c.key, "subscription_id": c.sub.id, "tenant_id": c.sub.tenant_id,
         "state": "pending", "batch_key": None, "due_at": due, "payload": _payload(c),
         "created_at": now} for c, due in rows])


async def expedite(conn: AsyncConnection, sub_id: str, due: datetime) -> None:
    """Pull a subscriber's pending batch forward to `due` (an urgent item joined it)."""
    await conn.execute(decide_items.update()
                       .where(decide_items.c.subscription_id == sub_id,
                              decide_items.c.state == "pending", decide_items.c.due_at > due)
                       .values(due_at=due))


@dataclass(frozen=True)
class Batch:
    key: str
    subscription_id: str
    tenant_id: str
    items: tuple[NotificationItem, ...]
    item_keys: tuple[str, ...]
    severities: tuple[str, ...]


def batch_key(item_keys: list[str]) -> str:
    """A single item keeps its own key; a group gets the hash of its items' keys."""
    return item_keys[0] if len(item_keys) == 1 else group_key(item_keys)


async def claim_due(conn: AsyncConnection, now: datetime) -> int:
    """Close every pending batch that is due: pending -> batched under its batch key."""
    rows = (await conn.execute(
        sa.select(decide_items.c.item_key, decide_items.c.subscription_id)
        .where(decide_items.c.state == "pending", decide_items.c.due_at <= now)
        .order_by(decide_items.c.subscription_id, decide_items.c.item_key))).all()
    by_sub: dict[str, list[str]] = {}
    for key, sub in rows:
        by_sub.setdefault(sub, []).append(key)
    for keys in by_sub.values():
        bkey = batch_key(keys)
        # Conditional on `pending`, so two decide processes never batch the same item twice.
        await conn.execute(decide_items.update()
                           .where(decide_items.c.item_key.in_(keys),
                                  decide_items.c.state == "pending")
                           .values(state="batched", batch_key=bkey, flushed_at=now))
    return len(by_sub)


async def batched(conn: AsyncConnection) -> list[Batch]:
    """Batches closed but not yet published and admitted (also after a crash)."""
    rows = (await conn.execute(
        sa.select(decide_items.c.batch_key, decide_items.c.subscription_id,
                  decide_items.c.tenant_id, decide_items.c.item_key, decide_items.c.payload)
        .where(decide_items.c.state == "batched")
        .order_by(decide_items.c.batch_key, decide_items.c.created_at,
                  decide_items.c.item_key))).all()
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(r[0], []).append(r)
    out = []
    for bkey, members in groups.items():
        out.append(Batch(
            key=bkey, subscription_id=members[0][1], tenant_id=members[0][2],
            items=tuple(NotificationItem.model_validate(m[4]["item"]) for m in members),
            item_keys=tuple(m[3] for m in members),
            severities=tuple(m[4]["severity"] for m in members)))
    return out


async def mark(conn: AsyncConnection, bkey: str | list[str], state: str) -> None:
    keys = [bkey] if isinstance(bkey, str) else bkey
    for i in range(0, len(keys), _CHUNK):
        await conn.execute(decide_items.update()
                           .where(decide_items.c.batch_key.in_(keys[i:i + _CHUNK]),
                                  decide_items.c.state == "batched")
                           .values(state=state))


async def next_due(conn: AsyncConnection) -> datetime | None:
    value = (await conn.execute(sa.select(sa.func.min(decide_items.c.due_at))
                                .where(decide_items.c.state == "pending"))).scalar_one_or_none()
    return None if value is None else _aware(value)

