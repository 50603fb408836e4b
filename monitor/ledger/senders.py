"""Who holds a claim: every deliver process is a sender with an id and a heartbeat row in
`senders`, and each claim names its sender (`notifications.claimed_by`).

A claim whose sender stopped beating (killed, its machine gone) is taken over as soon as the
beat is `takeover` old, instead of waiting out the lease; the lease stays the backstop for a
sender that beats but is stuck. A sender never takes over its own claims (they are in flight
in its process), and one that stops cleanly hands back what it still holds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.ledger.model import State
from monitor.store.schema import notifications, senders

_N = notifications.c
_S = senders.c
# Rows of senders that died are dropped once they are this old (nothing names them by then).
_FORGET = timedelta(days=1)


@dataclass(frozen=True)
class Sender:
    """This process as a sender, and how stale another sender's beat may be."""

    takeover: timedelta = timedelta(seconds=3)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def others_dead(self, now: datetime) -> sa.ColumnElement[bool]:
        """A `sending` row held by another sender whose beat is older than `takeover`."""
        alive = sa.select(_S.id).where(_S.id == _N.claimed_by,
                                       _S.beat_at >= now - self.takeover).exists()
        return sa.and_(_N.state == State.SENDING.value,
                       sa.or_(_N.claimed_by.is_(None), _N.claimed_by != self.id), ~alive)


async def beat(conn: AsyncConnection, sender: Sender, now: datetime) -> None:
    updated = await conn.execute(senders.update().where(_S.id == sender.id)
                                 .values(beat_at=now))
    if not updated.rowcount:
        await conn.execute(senders.insert().values(id=sender.id, started_at=now, beat_at=now))
        await conn.execute(senders.delete().where(_S.beat_at < now - _FORGET))


async def retire(conn: AsyncConnection, sender: Sender, now: datetime) -> int:
    """A clean stop: what the sender still holds is due again at once; its row goes.

    A claim still held at a clean stop is one whose attempt raised before it settled, maybe
    after the provider took it: it stays `sending` (unsettled, monitor.ledger.Claim), only
    with its lease ended and no sender."""
    released = await conn.execute(
        notifications.update().where(_N.claimed_by == sender.id,
                                     _N.state == State.SENDING.value)
        .values(next_attempt_at=now, claimed_by=None, updated_at=now))
    await conn.execute(senders.delete().where(_S.id == sender.id))
    return int(released.rowcount or 0)
