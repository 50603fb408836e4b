"""Every write to the ledger, each a named transition of `State`, each set-based: one
statement however many keys it moves, so a fan-out to 10,000 subscribers costs what one does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.ledger.model import HANDOFF, REPLAYABLE, Claim, State, Verdict
from monitor.ledger.senders import Sender
from monitor.notifications import Notification, notification_json
from monitor.store.engine import encoded_json, insert_ignore, unindexed
from monitor.store.schema import attempts, notifications

_N = notifications.c

# Told the retry time whenever a provider's late status puts a key back on the schedule: a
# deliver in the same process (`capmon run`, the demo) then sleeps no later than that, where
# otherwise it would learn of the retry only on its next scheduler pass.
_rescheduled: list[Callable[[datetime], None]] = []


def on_rescheduled(listener: Callable[[datetime], None]) -> Callable[[], None]:
    """Register `listener`; returns the call that removes it."""
    _rescheduled.append(listener)
    return lambda: _rescheduled.remove(listener)


def _row(n: Notification, now: datetime, state: State, reason: str | None,
         due: datetime | None = None) -> dict[str, Any]:
    return {"key": n.key, "tenant_id": n.tenant_id, "subscription_id": n.subscription_id,
            "channel": n.channel.type, "state": state.value,
            "payload": encoded_json(notification_json(n)), "attempt_count": 0, "attempt_base": 0,
            "next_attempt_at": (due or now) if state == State.PENDING else None,
            "last_error": reason, "observed_at": n.earliest_observed_at,
            "created_at": now, "updated_at": now, "delivered_at": None}


async def _insert_new(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    if not rows:
        return set()
    stmt = insert_ignore(conn, notifications, ["key"]).returning(_N.key)
    return {r[0] for r in await conn.execute(stmt, rows)}


async def admit(conn: AsyncConnection, ns: Iterable[Notification], now: datetime, *,
                handoff: bool = True) -> set[str]:
    """New keys enter as `pending`; a key the ledger has is left as it is (a duplicate).
    Returns the keys that were new.

    With `handoff` (decide, the API: the key is about to be published), the bus consumer may
    claim it at once and the scheduler only after `HANDOFF`; without it (deliver admitting a
    record it holds) it is due now."""
    due = now + HANDOFF if handoff else now
    return await _insert_new(conn, [_row(n, now, State.PENDING, None, due) for n in ns])


async def suppress(conn: AsyncConnection, muted: Iterable[tuple[Notification, str]],
                   now: datetime) -> set[str]:
    """Decided but not to be sent, with the reason (quiet hours, inhibited...)."""
    return await _insert_new(conn, [_row(n, now, State.SUPPRESSED, why) for n, why in muted])


async def claim(conn: AsyncConnection, ns: Sequence[Notification], now: datetime,
                lease_until: datetime, sender: Sender | None = None) -> dict[str, Claim]:
    """Take the keys that are due (pending/failed whose time came, or sending whose lease
    expired, or whose `sender` stopped beating: its process died) under a lease, for
    `sender`; the rest are not ours to send now.

    A claim taken over from a sender that died mid-send is the only way one key is sent
    twice, under the same idempotency key; such an SMS claim is `unsettled`, so its
    provider's log can be asked first.
    """
    if not ns:
        return {}
    keys = list(dict.fromkeys(n.key for n in ns))
    # Due, or fresh: never attempted nor deferred (a record in hand is a key's first send).
    fresh = sa.and_(_N.attempt_count == 0, _N.last_error.is_(None))
    due = sa.or_(_N.next_attempt_at.is_(None), _N.next_attempt_at <= now, fresh)
    claimable = sa.or_(sa.and_(_N.state.in_((State.PENDING, State.FAILED)), due),
                       sa.and_(_N.state == State.SENDING, _N.next_attempt_at <= now),
                       *([sender.others_dead(now)] if sender else []))
    # RETURNING sees only the new state, so the claims still `sending` (whose fate is unknown)
    # are read first; the lock keeps them so until the update (SQLite: writers are serial).
    # Only SMS acts on it (Twilio's log is asked): a webhook or an email is repeated under
    # its idempotency key, so a fan-out's claims skip this statement.
    asked = list(dict.fromkeys(n.key for n in ns if n.channel.type == "sms"))
    unsettled = set((await conn.execute(
        sa.select(_N.key).where(_N.key.in_(asked), _N.state == State.SENDING)
        .order_by(_N.key).with_for_update())).scalars()) if asked else set()
    rows = await conn.execute(
        notifications.update().where(_N.key.in_(keys), unindexed(claimable))
        .values(state=State.SENDING.value, next_attempt_at=lease_until, updated_at=now,
                claimed_by=sender.id if sender else None)
        .returning(_N.key, _N.attempt_count, _N.attempt_base))
    return {r[0]: Claim(r[0], int(r[1]), int(r[2]), unsettled=r[0] in unsettled)
            for r in rows}


async def settle(conn: AsyncConnection, verdicts: Sequence[Verdict]) -> None:
    """End claims: attempt rows for those that made one, then each key's new state (two
    executemany statements for any number of keys)."""
    if not verdicts:
        return
    made = [v for v in verdicts if v.attempt is not None]
    if made:
        await conn.execute(attempts.insert(), [
            {"notification_key": v.key, "attempt_no": a.number, "attempted_at": a.at,
             "channel": a.channel, "outcome": a.outcome, "status_code": a.status_code,
             "provider_error": a.provider_error,
             "error": a.error[:1000] if a.error else None, "latency_s": a.latency_s}
            for v in made if (a := v.attempt) is not None])
    b = sa.bindparam
    await conn.execute(
        notifications.update().where(_N.key == b("v_key"))
        .values(state=b("v_state"), updated_at=b("v_at"), next_attempt_at=b("v_next"),
                last_error=b("v_error"),
                attempt_count=sa.func.coalesce(b("v_count", type_=sa.Integer), _N.attempt_count),
                delivered_at=sa.func.coalesce(b("v_delivered", type_=_N.delivered_at.type),
                                              _N.delivered_at)),
        [{"v_key": v.key, "v_state": v.state.value, "v_at": v.at, "v_next": v.next_attempt_at,
          "v_error": v.error[:1000] if v.error else None,
          "v_count": v.attempt.number if v.attempt else None,
          "v_delivered": v.at if v.state == State.DELIVERED else None} for v in verdicts])


async def reopen(conn: AsyncConnection, key: str, now: datetime, *,
                 tenant_id: str | None = None) -> bool:
    """Replay: a dead, failed or delivered key goes back to pending with a fresh schedule."""
    q = notifications.update().where(_N.key == key, _N.state.in_(REPLAYABLE))
    if tenant_id is not None:
        q = q.where(_N.tenant_id == tenant_id)
    result = await conn.execute(q.values(state=State.PENDING.value, next_attempt_at=now,
                                         updated_at=now, attempt_base=_N.attempt_count,
                                         last_error=None))
    return bool(result.rowcount)


async def undeliver(conn: AsyncConnection, key: str, attempt_no: int, now: datetime, *,
                    next_attempt_at: datetime | None, error: str) -> bool:
    """A provider's late word that a delivered attempt did not arrive (an SMS that Twilio
    accepted, then failed): failed with a retry time, or dead. Only while that attempt is
    still the key's latest and delivered; a later attempt or a replay has taken over otherwise.
    """
    state = State.FAILED if next_attempt_at is not None else State.DEAD
    result = await conn.execute(
        notifications.update()
        .where(_N.key == key, _N.state == State.DELIVERED, _N.attempt_count == attempt_no)
        .values(state=state.value, next_attempt_at=next_attempt_at, last_error=error[:1000],
                updated_at=now))
    if result.rowcount and next_attempt_at is not None:
        # Before the commit: a listener may only sleep less, never act on the row now.
        for listener in list(_rescheduled):
            listener(next_attempt_at)
    return bool(result.rowcount)
