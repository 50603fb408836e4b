"""A provider's word on an attempt after the send: Twilio message and call SIDs and their
status (`sms_messages`, `voice_calls`).

The send records the SID of the message or call Twilio accepted; status callbacks move it
forward. Either may arrive first, and callbacks arrive out of order and more than once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.schema import sms_messages, voice_calls

# Callbacks arrive out of order: a status only ever moves forward along this ranking.
_SMS_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
             "receiving": 3, "received": 4, "delivered": 5, "undelivered": 5, "failed": 5,
             "canceled": 5, "partially_delivered": 5, "read": 6}


async def _created(conn: AsyncConnection, table: sa.Table, **row: object) -> bool:
    """Insert the first word of a SID; False when another writer created its row first (the
    send and its first callback race to): the caller then updates that row instead."""
    try:
        async with conn.begin_nested():
            await conn.execute(table.insert().values(**row))
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True)
class SmsUpdate:
    notification_key: str
    attempt_no: int
    status: str
    error_code: str | None
    changed: bool

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "undelivered")


async def record_sms_status(conn: AsyncConnection, sid: str, status: str,
                            error_code: str | None, now: datetime, *,
                            notification_key: str | None = None,
                            attempt_no: int | None = None) -> SmsUpdate | None:
    """Record what is known of a message: from the send (its 201) or from a status callback,
    whichever arrives first. Returns the message's status after the update, `changed=False`
    for a stale or repeated one, None for a SID we know nothing about."""
    m = sms_messages.c
    # FOR UPDATE serializes the send's bookkeeping and its callbacks on this message: the
    # later of the two then sees the other's status, so a failure callback that overtakes
    # the send is applied by whichever commits last (on SQLite, writers are serial anyway).
    row = (await conn.execute(sa.select(m.notification_key, m.attempt_no, m.status,
                                        m.error_code).where(m.sid == sid)
                              .with_for_update())).first()
    if row is None:
        if notification_key is None or attempt_no is None:
            return None
        if not await _created(conn, sms_messages, sid=sid, notification_key=notification_key,
                              attempt_no=attempt_no, status=status, error_code=error_code,
                              created_at=now, updated_at=now):
            return await record_sms_status(conn, sid, status, error_code, now)
        return SmsUpdate(notification_key, attempt_no, status, error_code, changed=True)
    if _SMS_RANK.get(status, -1) <= _SMS_RANK.get(row.status, 0):
        return SmsUpdate(row.notification_key, row.attempt_no, row.status, row.error_code,
                         changed=False)
    await conn.execute(sms_messages.update().where(m.sid == sid, m.status == row.status)
                       .values(status=status, error_code=error_code, updated_at=now))
    return SmsUpdate(row.notification_key, row.attempt_no, status, error_code, changed=True)


async def sms_sids(conn: AsyncConnection, keys: Collection[str]) -> dict[str, dict[str, int]]:
    """The message SIDs known for each key (from sends and callbacks), with their attempt."""
    if not keys:
        return {}
    m = sms_messages.c
    out: dict[str, dict[str, int]] = {}
    for key, sid, attempt_no in await conn.execute(
            sa.select(m.notification_key, m.sid, m.attempt_no)
            .where(m.notification_key.in_(list(keys)))):
        out.setdefault(key, {})[sid] = int(attempt_no)
    return out


# A call's statuses, forward only; the last rank is every way a call ends.
_CALL_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "completed": 4,
              "busy": 4, "no-answer": 4, "failed": 4, "canceled": 4}
CALL_UNANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class CallUpdate:
    notification_key: str
    attempt_no: int
    status: str
    answered_by: str | None
    error_code: str | None
    changed: bool

    @property
    def unanswered(self) -> bool:
        return self.status in CALL_UNANSWERED

    @property
    def machine(self) -> bool:
        """Answered by a machine (or a fax): the message was left, not heard."""
        return (self.answered_by or "").startswith(("machine", "fax"))


async def record_call_status(conn: AsyncConnection, sid: str, status: str,
                             error_code: str | None, now: datetime, *,
                             answered_by: str | None = None,
                             notification_key: str | None = None,
                             attempt_no: int | None = None) -> CallUpdate | None:
    """Record what is known of a call, from the send or a callback, whichever comes first:
    its status only moves forward, and who answered is kept once known. None for a SID we
    know nothing about (and were not told the key of)."""
    c = voice_calls.c
    row = (await conn.execute(sa.select(c.notification_key, c.attempt_no, c.status,
                                        c.answered_by, c.error_code).where(c.sid == sid)
                              .with_for_update())).first()
    if row is None:
        if notification_key is None or attempt_no is None:
            return None
        if not await _created(conn, voice_calls, sid=sid, notification_key=notification_key,
                              attempt_no=attempt_no, status=status, answered_by=answered_by,
                              error_code=error_code, created_at=now, updated_at=now):
            return await record_call_status(conn, sid, status, error_code, now,
                                            answered_by=answered_by)
        return CallUpdate(notification_key, attempt_no, status, answered_by, error_code,
                          changed=True)
    forward = _CALL_RANK.get(status, -1) > _CALL_RANK.get(row.status, 0)
    answered = row.answered_by or answered_by
    if not forward and answered == row.answered_by:
        return CallUpdate(row.notification_key, row.attempt_no, row.status, row.answered_by,
                          row.error_code, changed=False)
    values: dict[str, object] = {"answered_by": answered, "updated_at": now}
    if forward:
        values.update(status=status, error_code=error_code)
    await conn.execute(voice_calls.update().where(c.sid == sid).values(**values))
    return CallUpdate(row.notification_key, row.attempt_no, status if forward else row.status,
                      answered, error_code if forward else row.error_code, changed=forward)


async def call_of(conn: AsyncConnection, sid: str) -> tuple[str, int] | None:
    """The notification key and attempt a call SID was placed for, or None."""
    c = voice_calls.c
    row = (await conn.execute(sa.select(c.notification_key, c.attempt_no)
                              .where(c.sid == sid))).first()
    return None if row is None else (str(row[0]), int(row[1]))
