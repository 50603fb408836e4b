"""Calendar feeds (`calendar_feeds`; this module is its only writer) and what a feed lists.

A feed's URL carries a random token; the store keeps its SHA-256 only. A feed lists the
windowed conditions its subscription was told about: decide logs every transition it derives
for a subscription in `decide_items`, muted or not, so that log is the one record of which
conditions a subscription's match admitted (its regions, programs and severities included)
without the API repeating decide's matching.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.events import Condition, Kind
from monitor.store.engine import in_chunks
from monitor.store.schema import calendar_feeds, condition_history, conditions, decide_items

_F = calendar_feeds.c
# The kinds whose conditions are periods a scheduler plans around.
WINDOWED_KINDS = (Kind.CAISO_EEA, Kind.CAISO_FLEX_ALERT, Kind.CAISO_RMO,
                  Kind.CAISO_TRANSMISSION_EMERGENCY, Kind.CAISO_LEGACY, Kind.SCE_DR_EVENT)


@dataclass(frozen=True, slots=True)
class Feed:
    subscription_id: str
    tenant_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """A condition as its feed shows it, and how many times its window or status changed
    (the event's iCalendar SEQUENCE)."""

    condition: Condition
    sequence: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def rotate(conn: AsyncConnection, sub_id: str, tenant_id: str, now: datetime) -> str:
    """A new token for the subscription's feed (the old URL stops working); returned once."""
    token = secrets.token_urlsafe(32)
    await conn.execute(calendar_feeds.delete().where(_F.subscription_id == sub_id))
    await conn.execute(calendar_feeds.insert().values(
        subscription_id=sub_id, tenant_id=tenant_id, token_hash=_hash(token), created_at=now))
    return token


async def get(conn: AsyncConnection, sub_id: str, tenant_id: str) -> Feed | None:
    row = (await conn.execute(sa.select(_F.subscription_id, _F.tenant_id, _F.created_at).where(
        _F.subscription_id == sub_id, _F.tenant_id == tenant_id))).first()
    return None if row is None else Feed(row.subscription_id, row.tenant_id, row.created_at)


async def by_token(conn: AsyncConnection, token: str) -> Feed | None:
    row = (await conn.execute(sa.select(_F.subscription_id, _F.tenant_id, _F.created_at).where(
        _F.token_hash == _hash(token)))).first()
    return None if row is None else Feed(row.subscription_id, row.tenant_id, row.created_at)


async def delete(conn: AsyncConnection, sub_id: str, tenant_id: str) -> bool:
    result = await conn.execute(calendar_feeds.delete().where(
        _F.subscription_id == sub_id, _F.tenant_id == tenant_id))
    return bool(result.rowcount)


async def entries(conn: AsyncConnection, sub_id: str, since: datetime) -> list[Entry]:
    """The windowed conditions the subscription heard of that end (or, open-ended, start)
    at or after `since`, latest revision each, soonest first."""
    heard = (sa.select(decide_items.c.payload[("item", "condition", "id")].as_string())
             .where(decide_items.c.subscription_id == sub_id,
                    decide_items.c.created_at >= since))
    rows = await conn.execute(sa.select(conditions.c.body).where(
        conditions.c.id.in_(heard), conditions.c.kind.in_([k.value for k in WINDOWED_KINDS]),
        conditions.c.window_start.is_not(None)))
    found = [Condition.model_validate(r.body) for r in rows]
    shown = [c for c in found if (c.window.end or c.window.start or since) >= since]
    sequences = await _sequences(conn, [c.id for c in shown])
    shown.sort(key=lambda c: (c.window.start or since, c.id))
    return [Entry(c, sequences.get(c.id, 0)) for c in shown]


def _instant(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def _sequences(conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
    """Per condition, how often its window or its cancellation changed from one revision
    to the next: calendar clients replace an event only when its SEQUENCE grows."""
    h = condition_history.c
    last: dict[str, tuple[object, ...]] = {}
    out: dict[str, int] = {}
    for chunk in in_chunks(ids):
        rows = await conn.execute(sa.select(h.condition_id, h.status, h.body)
                                  .where(h.condition_id.in_(chunk))
                                  .order_by(h.condition_id, h.revision))
        for cid, status, body in rows:
            window = body.get("window") or {}
            seen = (_instant(window.get("start")), _instant(window.get("end")),
                    status == "cancelled")
            if cid in last and last[cid] != seen:
                out[cid] = out.get(cid, 0) + 1
            last[cid] = seen
    return out
