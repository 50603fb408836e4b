"""Acknowledgements (`acknowledgements`; this module is its only writer): "I have it".

A notification at or above its subscription's `ack_severity` can be acknowledged once, by
whoever received it, on the channel it came by (or by the tenant's key). The first one
stands: a second answers with who took it, so two schedulers racing to reply learn which of
them owns the emergency. The time from delivery to acknowledgement is the measure of whether
alerts reach a person (`capmon_time_to_acknowledge_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.events import Severity
from monitor.ledger.model import LedgerEntry, State
from monitor.metrics import TIME_TO_ACK
from monitor.notifications import all_clear
from monitor.store import escalations
from monitor.store.engine import in_chunks, insert_ignore
from monitor.store.schema import acknowledgements, notifications
from monitor.store.subscriptions import aware
from monitor.store.subscriptions import get as get_subscription

_A, _N = acknowledgements.c, notifications.c
# Sent, or on its way: a notification never sent (suppressed) has nothing to acknowledge.
_ACKABLE_STATES = (State.DELIVERED, State.SENDING, State.FAILED, State.PENDING)


def ack_code(key: str) -> str:
    """The code an SMS shows ("Reply ACK 4F2A"): the first characters of its key."""
    return key[:4].upper()


class Via(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"
    API = "api"
    PORTAL = "portal"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Ack:
    key: str
    by: str
    via: Via
    at: datetime


class AckRefused(Exception):
    """Why a notification cannot be acknowledged; `first` is the acknowledgement that
    already stands, when that is the reason."""

    def __init__(self, reason: str, detail: str, first: Ack | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.first = reason, detail, first


async def acknowledge(conn: AsyncConnection, key: str, by: str, via: Via, now: datetime, *,
                      tenant_id: str | None = None) -> Ack:
    """Record the acknowledgement of `key`, or raise `AckRefused` (not_found, not_sent, all_clear,
    below_ack_severity, already)."""
    q = sa.select(_N.key, _N.tenant_id, _N.subscription_id, _N.state, _N.payload,
                  _N.created_at, _N.delivered_at).where(_N.key == key)
    if tenant_id is not None:
        q = q.where(_N.tenant_id == tenant_id)
    row = (await conn.execute(q)).first()
    if row is None:
        raise AckRefused("not_found", "no such notification")
    severity = Severity(row.payload["severity"])
    refused = await _refusal(conn, row.state, row.payload, row.subscription_id,
                             row.tenant_id)
    if refused is not None:
        raise refused
    inserted = await conn.execute(insert_ignore(conn, acknowledgements).values(
        key=key, tenant_id=row.tenant_id, subscription_id=row.subscription_id,
        severity=severity.value, by=by, via=via.value, at=now))
    if not inserted.rowcount:
        first = (await acks_of(conn, [key]))[key]
        raise AckRefused("already", f"acknowledged by {first.by} ({first.via}) at "
                                    f"{first.at.isoformat()}", first)
    # Someone has it: the escalation of its condition stops here, in this transaction.
    await escalations.acknowledged(conn, row.tenant_id, row.subscription_id,
                                   [i["condition"]["id"] for i in row.payload["items"]], key,
                                   now)
    sent = aware(row.delivered_at or row.created_at)
    TIME_TO_ACK.labels(severity=severity.value).observe(max(0.0, (now - sent).total_seconds()))
    return Ack(key, by, via, now)


async def may_acknowledge(conn: AsyncConnection, entry: LedgerEntry) -> bool:
    """Whether `acknowledge` would take this entry, were nobody to have taken it yet."""
    return await refusal(conn, entry) is None


async def refusal(conn: AsyncConnection, entry: LedgerEntry) -> AckRefused | None:
    """Why `acknowledge` would refuse this entry, were nobody to have taken it yet."""
    return await _refusal(conn, entry.state, entry.payload, entry.subscription_id,
                          entry.tenant_id)


async def _refusal(conn: AsyncConnection, state: str, payload: dict[str, Any], sub_id: str,
                   tenant_id: str) -> AckRefused | None:
    if state not in _ACKABLE_STATES:
        return AckRefused("not_sent", f"this notification is {state}: it was not sent")
    if all_clear(i["transition"] for i in payload["items"]):
        return AckRefused("all_clear", "an all-clear: there is nothing left to take")
    severity = Severity(payload["severity"])
    floor = await _ack_severity(conn, sub_id, tenant_id)
    if severity < floor:
        return AckRefused("below_ack_severity", f"a {severity} notification; its subscription "
                                                f"takes acknowledgements from {floor}")
    return None


async def _ack_severity(conn: AsyncConnection, sub_id: str, tenant_id: str) -> Severity:
    sub = await get_subscription(conn, sub_id, tenant_id)
    # A deleted subscription's notifications keep the default.
    return Severity.EMERGENCY if sub is None else sub.spec.ack_severity


async def acks_of(conn: AsyncConnection, keys: list[str]) -> dict[str, Ack]:
    out: dict[str, Ack] = {}
    for chunk in in_chunks(keys):
        rows = await conn.execute(sa.select(_A.key, _A.by, _A.via, _A.at)
                                  .where(_A.key.in_(chunk)))
        out.update({r.key: Ack(r.key, r.by, Via(r.via), aware(r.at)) for r in rows})
    return out


async def paged_phone(conn: AsyncConnection, phone: str, now: datetime, within: timedelta,
                      prefix: str | None = None) -> list[str]:
    """Keys of SMS notifications sent to `phone` since `now - within`, newest first, not
    yet acknowledged (and starting with `prefix`, the code a message shows, when given)."""
    q = (sa.select(_N.key).outerjoin(acknowledgements, _A.key == _N.key)
         .where(_N.channel == "sms", _N.state.in_(_ACKABLE_STATES),
                _N.created_at >= now - within, _A.key.is_(None),
                _N.payload[("channel", "phone")].as_string() == phone)
         .order_by(_N.created_at.desc(), _N.key).limit(20))
    if prefix is not None:
        q = q.where(_N.key.like(f"{prefix}%"))
    return [r[0] for r in await conn.execute(q)]
