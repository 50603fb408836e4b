"""Put a notification in a given ledger state through the ledger's own transitions, the
way decide and deliver would (tests of readers: the status page, gauges, replay)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from monitor import ledger
from monitor.ledger import AttemptRecord, State, Verdict
from monitor.notifications import Notification


async def put(conn: AsyncConnection, n: Notification, state: str, now: datetime,
              reason: str = "quiet_hours") -> None:
    target = State(state)
    if target == State.SUPPRESSED:
        assert await ledger.suppress(conn, [(n, reason)], now) == {n.key}
        return
    assert await ledger.admit(conn, [n], now) == {n.key}
    if target == State.PENDING:
        return
    claims = await ledger.claim(conn, [n], now, now + timedelta(seconds=60))
    assert set(claims) == {n.key}
    if target == State.SENDING:
        return
    channel = n.channel.type
    if target == State.DELIVERED:
        verdict = Verdict.delivered(n.key, now, AttemptRecord(1, now, channel, "delivered"))
    elif target == State.FAILED:
        verdict = Verdict.retry(n.key, now, AttemptRecord(1, now, channel, "retry"),
                                now + timedelta(seconds=5), "server: 503")
    else:
        verdict = Verdict.dead(n.key, now, AttemptRecord(1, now, channel, "failed"),
                               "client: 400")
    await ledger.settle(conn, [verdict])
