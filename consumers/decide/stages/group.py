"""Dedup and grouping: decide's item log, `decide_items` (this module is its only writer).

Every candidate's key is written once; a key already there is a duplicate (a redelivered
revision, a replay, a re-derivation after restart) and goes no further. Candidates for one
subscriber that arrive within `group_wait` of each other, or within `group_interval` of the
subscriber's last notification, wait in one pending batch and leave as one notification, like
Alertmanager's aggregation groups: an escalation ladder becomes one message, not five.

Item states: pending (in an open batch, leaves at `due_at`) -> sent (admitted to the ledger
under `batch_key`) | suppressed (muted, or its subscription went inactive while it waited).
An item that is a batch of itself, due at once, is written `sent` from the start.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.decide.stages import Candidate, Context, Grouping
from monitor.events import Severity
from monitor.notifications import EscalationRef, group_key
from monitor.store.engine import EncodedJSON, as_json, in_chunks, unindexed
from monitor.store.schema import acknowledgements, decide_items
from monitor.store.subscriptions import aware

_I = decide_items.c
# Batches closed by a version of decide that published before admitting; they are admitted
# like pending ones that are due.
_LEGACY_BATCHED = "batched"


async def dedup(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Drop candidates whose key decide has already handled, and repeats within this run."""
    if not cands:
        return cands
    seen: set[str] = set()
    for chunk in in_chunks(c.key for c in cands):
        rows = await ctx.conn.execute(sa.select(_I.item_key).where(_I.item_key.in_(chunk)))
        seen.update(r[0] for r in rows)
    out = []
    for cand in cands:
        if cand.key not in seen:
            seen.add(cand.key)
            out.append(cand)
    return out


async def group(ctx: Context, cands: list[Candidate]) -> list[Candidate]:
    """Give each candidate its batch's due time and log it: urgent subscribers' open
    batches are pulled forward in one update, every item is written in one insert.

    A candidate due now that is its subscriber's only one, with no open batch to join, is a
    batch of itself: it is logged closed (`sent`, its own key as the batch's), and admit
    sends it from the candidate. A fan-out's items are all such, so none is written twice."""
    if not cands:
        return cands
    g, now = ctx.grouping, ctx.now
    live = [c for c in cands if c.muted is None]
    subs = {c.sub.id for c in live}
    urgent = {c.sub.id for c in live if c.severity >= g.urgent}
    open_ = await _open_batches(ctx.conn, subs)
    dues = await _due_times(ctx.conn, subs - urgent, open_, now, g)
    if urgent:
        soon = now + g.wait
        dues.update((sid, soon) for sid in urgent)
        for chunk in in_chunks(sorted(urgent & open_.keys())):
            await ctx.conn.execute(decide_items.update()
                                   .where(_I.subscription_id.in_(chunk), _I.state == "pending",
                                          _I.due_at > soon)
                                   .values(due_at=soon))
    per_sub = Counter(c.sub.id for c in live)
    out = [c if c.muted is not None else dataclasses.replace(
               c, due_at=dues[c.sub.id],
               alone=dues[c.sub.id] <= now and c.sub.id not in open_ and per_sub[c.sub.id] == 1)
           for c in cands]
    # One condition's item is shared by every subscriber it matched: it is encoded once,
    # and so is each payload that holds it (by severity and escalation step), which K rows
    # then share instead of K copies.
    items: dict[int, EncodedJSON] = {}  # by id(item): `out` keeps every item alive meanwhile
    payloads: dict[tuple[int, Severity, EscalationRef | None], EncodedJSON] = {}
    rows = []
    for c in out:
        payload = payloads.get(shared := (id(c.item), c.severity, c.escalation))
        if payload is None:
            item = items.get(id(c.item))
            if item is None:
                item = items[id(c.item)] = EncodedJSON(c.item.model_dump_json())
            payload = payloads[shared] = as_json({
                "severity": c.severity.value, "item": item,
                "escalation": None if c.escalation is None
                else c.escalation.model_dump(mode="json")})
        rows.append(_item_row(c, payload, now))
    await ctx.conn.execute(decide_items.insert(), rows)
    return out


def _item_row(c: Candidate, payload: EncodedJSON, now: datetime) -> dict[str, Any]:
    closed = c.muted is not None or c.alone
    state = "suppressed" if c.muted is not None else "sent" if c.alone else "pending"
    return {"item_key": c.key, "subscription_id": c.sub.id, "tenant_id": c.sub.tenant_id,
            "state": state, "batch_key": c.key if closed else None,
            "due_at": now if c.muted is not None else c.due_at, "payload": payload,
            "created_at": now, "flushed_at": now if closed else None}


async def _open_batches(conn: AsyncConnection, sub_ids: Iterable[str]) -> dict[str, datetime]:
    """The subscribers among these with a pending batch, and when it leaves (one grouped
    query per 500)."""
    out: dict[str, datetime] = {}
    for chunk in in_chunks(sorted(set(sub_ids))):
        pending = await conn.execute(
            sa.select(_I.subscription_id, sa.func.min(_I.due_at))
            .where(_I.subscription_id.in_(chunk), _I.state == "pending")
            .group_by(_I.subscription_id))
        out.update((sid, aware(due)) for sid, due in pending if due is not None)
    return out


async def _due_times(conn: AsyncConnection, sub_ids: Iterable[str],
                     open_: dict[str, datetime], now: datetime,
                     g: Grouping) -> dict[str, datetime]:
    """`due_at` for many subscribers at once (one grouped query per 500): an open batch's,
    which the item joins, or the group interval after the last notification."""
    ids = sorted(set(sub_ids))
    out = {sid: now + g.wait for sid in ids}
    for chunk in in_chunks(ids):
        last = await conn.execute(
            sa.select(_I.subscription_id, sa.func.max(_I.flushed_at))
            .where(_I.subscription_id.in_(chunk), _I.state.in_((_LEGACY_BATCHED, "sent")))
            .group_by(_I.subscription_id))
        for sid, flushed in last:
            if flushed is not None:
                out[sid] = max(out[sid], aware(flushed) + g.interval)
    out.update((sid, due) for sid, due in open_.items() if sid in out)
    return out


@dataclass(frozen=True)
class Batch:
    """A closed batch: one subscriber's due items, leaving as one notification."""

    key: str
    subscription_id: str
    tenant_id: str
    item_keys: tuple[str, ...]


def batch_key(item_keys: list[str]) -> str:
    """A single item keeps its own key; a group gets the hash of its items' keys."""
    return item_keys[0] if len(item_keys) == 1 else group_key(item_keys)


async def due_batches(conn: AsyncConnection, now: datetime) -> list[Batch]:
    """Every batch whose time has come, one per subscriber, items in arrival order."""
    rows = (await conn.execute(
        sa.select(_I.subscription_id, _I.tenant_id, _I.item_key)
        .where(sa.or_(sa.and_(_I.state == "pending", _I.due_at <= now),
                      _I.state == _LEGACY_BATCHED))
        .order_by(_I.subscription_id, _I.created_at, _I.item_key))).all()
    by_sub: dict[str, list[Any]] = {}
    for r in rows:
        by_sub.setdefault(r[0], []).append(r)
    return [Batch(key=batch_key([m[2] for m in members]), subscription_id=sid,
                  tenant_id=members[0][1], item_keys=tuple(m[2] for m in members))
            for sid, members in by_sub.items()]


async def items_of(conn: AsyncConnection,
                   keys: list[str]) -> dict[str, tuple[str, Any, Any]]:
    """(severity, item JSON, escalation JSON or None) of items logged earlier (those not
    decided in this run)."""
    out: dict[str, tuple[str, Any, Any]] = {}
    for chunk in in_chunks(keys):
        rows = await conn.execute(sa.select(_I.item_key, _I.payload)
                                  .where(_I.item_key.in_(chunk)))
        out.update((r[0], (r[1]["severity"], r[1]["item"], r[1].get("escalation")))
                   for r in rows)
    return out


async def close(conn: AsyncConnection, batches: list[Batch], state: str, now: datetime) -> None:
    """Closed batches leave the log's open set: `sent` (admitted) or `suppressed` (their
    subscription went inactive while they waited). A fan-out's batches are single items,
    which keep their own key as the batch's: those take one statement per 500, the items of
    grouped batches one executemany."""
    open_ = sa.or_(_I.state == "pending", _I.state == _LEGACY_BATCHED)
    alone = [b.key for b in batches if b.item_keys == (b.key,)]
    for chunk in in_chunks(alone):
        await conn.execute(decide_items.update().where(_I.item_key.in_(chunk), unindexed(open_))
                           .values(state=state, batch_key=_I.item_key, flushed_at=now))
    rows = [{"c_item": k, "c_batch": b.key} for b in batches if b.item_keys != (b.key,)
            for k in b.item_keys]
    if rows:
        p = sa.bindparam
        await conn.execute(
            decide_items.update()
            # OR, not IN: an IN list cannot be part of an executemany statement.
            .where(_I.item_key == p("c_item"), open_)
            .values(state=state, batch_key=p("c_batch"), flushed_at=now), rows)


async def next_due(conn: AsyncConnection) -> datetime | None:
    value = (await conn.execute(sa.select(sa.func.min(_I.due_at))
                                .where(_I.state == "pending"))).scalar_one_or_none()
    return None if value is None else aware(value)


async def told_of(conn: AsyncConnection,
                  pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (subscription, condition) pairs the subscriber was sent an item about."""
    condition_id = _I.payload[("item", "condition", "id")].as_string()
    rows = await conn.execute(sa.select(_I.subscription_id, condition_id).where(
        _I.subscription_id.in_(sorted({s for s, _ in pairs})), _I.state == "sent",
        condition_id.in_(sorted({c for _, c in pairs}))))
    return {(r[0], r[1]) for r in rows} & pairs


async def acknowledged(conn: AsyncConnection, condition_ids: set[str]) -> set[tuple[str, str]]:
    """(subscription, condition) pairs whose subscriber acknowledged a notification that
    carried an item about the condition."""
    condition_id = _I.payload[("item", "condition", "id")].as_string()
    rows = await conn.execute(
        sa.select(_I.subscription_id, condition_id)
        .join(acknowledgements, acknowledgements.c.key == _I.batch_key)
        .where(_I.state == "sent", condition_id.in_(sorted(condition_ids))))
    return {(r[0], r[1]) for r in rows}
