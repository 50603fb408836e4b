"""The send and a SID's first status callback race to create its row: the loser's insert is
undone on its own (a savepoint), leaving its transaction to update the winner's row."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from monitor import ledger
from monitor.ledger.provider import _created
from monitor.store import Store
from monitor.store.schema import voice_calls
from tests.deliver.helpers import add_subscription, add_tenant, notification

NOW = datetime(2022, 9, 6, 17, 26, tzinfo=UTC)


async def test_the_second_insert_of_a_sid_loses_and_its_transaction_goes_on(
        store: Store) -> None:
    tenant_id, _ = await add_tenant(store, NOW)
    sub_id = await add_subscription(store, tenant_id, "voice", "+16265550123", NOW)
    n = notification(tenant_id, sub_id, "voice", "+16265550123")
    sid = "CA" + "1" * 32
    row = {"sid": sid, "notification_key": n.key, "attempt_no": 1,
           "status": "queued", "created_at": NOW, "updated_at": NOW}
    async with store.begin() as conn:
        await ledger.admit(conn, [n], NOW)
        assert await _created(conn, voice_calls, **row)
        assert not await _created(conn, voice_calls, **(row | {"status": "ringing"}))
        update = await ledger.record_call_status(conn, sid, "ringing", None, NOW)
    assert update is not None and update.changed and update.status == "ringing"
    async with store.connect() as conn:
        statuses = (await conn.execute(sa.select(voice_calls.c.status))).scalars().all()
    assert statuses == ["ringing"]
