"""The store on SQLite and PostgreSQL: the same tests on both backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.decide.stages import group as groups
from monitor import ledger
from monitor.errors import StoreConflict
from monitor.events import Condition, Kind
from monitor.notifications import EmailChannel, Notification, NotificationItem, Transition
from monitor.store import Store, conditions, tenants
from monitor.store.engine import encoded_json
from monitor.store.schema import decide_items, metadata

T0 = datetime(2022, 9, 6, 17, 17, tzinfo=UTC)


def eea(revision: int, status: str = "active", level: str = "3", end_h: int = 20) -> Condition:
    return Condition(
        id="caiso.notice:202202696", kind="caiso.eea",
        severity="critical" if level == "3" else "emergency", status=status,
        window={"start": "2022-09-06T17:17:00-07:00", "end": f"2022-09-06T{end_h}:00:00-07:00"},
        regions=["CAISO Grid"], attributes={"notice_no": "202202696", "level": level},
        revision=revision, observed_at=T0 + timedelta(minutes=revision))


async def test_migrations_create_every_table_and_are_at_head(store: Store) -> None:
    async with store.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert set(metadata.tables) <= names
    assert not await store.pending_migrations()
    await store.upgrade()  # idempotent
    assert not await store.pending_migrations()


async def test_latest_revision_and_history(store: Store) -> None:
    async with store.begin() as conn:
        assert await conditions.record(conn, eea(1), T0) is None
        prev = await conditions.record(conn, eea(2, end_h=21), T0)
        assert prev is not None and prev.revision == 1
    async with store.connect() as conn:
        latest = await conditions.get(conn, "caiso.notice:202202696")
        assert latest is not None and latest.revision == 2
        assert latest.window.end is not None and latest.window.end.hour == 21
        assert [c.revision for c in await conditions.history(conn, latest.id)] == [1, 2]


async def test_an_older_revision_never_replaces_the_latest(store: Store) -> None:
    async with store.begin() as conn:
        await conditions.record(conn, eea(5, status="ended"), T0)
        await conditions.record(conn, eea(3), T0)  # redelivered, out of order
        await conditions.record(conn, eea(5, status="ended"), T0)  # duplicate
    async with store.connect() as conn:
        latest = await conditions.get(conn, "caiso.notice:202202696")
        assert latest is not None and latest.revision == 5 and latest.status == "ended"
        assert [c.revision for c in await conditions.history(conn, latest.id)] == [3, 5]


async def test_open_conditions_are_listed_by_kind(store: Store) -> None:
    flex = Condition(id="caiso.flex:6", kind="caiso.flex_alert", severity="watch",
                     status="scheduled", attributes={"flex_alert_id": 6}, revision=1,
                     observed_at=T0)
    async with store.begin() as conn:
        await conditions.record(conn, eea(1), T0)
        await conditions.record(conn, flex, T0)
        await conditions.record(conn, eea(2, status="ended"), T0)
    async with store.connect() as conn:
        open_now = await conditions.list_conditions(conn, open_only=True)
        assert [c.id for c in open_now] == ["caiso.flex:6"]
        eeas = await conditions.list_conditions(conn, kinds=[Kind.CAISO_EEA])
        assert [c.status for c in eeas] == ["ended"]
        counts = await conditions.counts_by_kind_status(conn)
        assert counts == {("caiso.eea", "ended"): 1, ("caiso.flex_alert", "scheduled"): 1}


async def test_tenant_keys_are_hashed_and_revocable(store: Store) -> None:
    async with store.begin() as conn:
        tenant, key = await tenants.create_tenant(conn, "Clean Power Alliance", "ops@cpa.test", T0)
    async with store.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT key_hash FROM api_keys"))).scalars().all()
        assert key not in stored and tenants.hash_key(key) in stored
        found = await tenants.tenant_for_key(conn, key)
        assert found is not None and found.id == tenant.id
        assert await tenants.tenant_for_key(conn, key + "x") is None
    async with store.begin() as conn:
        new_key = await tenants.add_api_key(conn, tenant.id, T0)
        assert await tenants.revoke_api_keys(conn, tenant.id, T0,
                                             except_hash=tenants.hash_key(new_key)) == 1
    async with store.connect() as conn:
        assert await tenants.tenant_for_key(conn, key) is None
        assert await tenants.tenant_for_key(conn, new_key) is not None


async def test_tenant_names_are_unique(store: Store) -> None:
    async with store.begin() as conn:
        await tenants.create_tenant(conn, "Desert Community Energy", None, T0)
    with pytest.raises(StoreConflict):
        async with store.begin() as conn:
            await tenants.create_tenant(conn, "Desert Community Energy", None, T0)


def notification(key: str) -> Notification:
    return Notification(
        key=key, tenant_id="t1", subscription_id="s1",
        channel=EmailChannel(address="ops@cpa.test"), decided_at=T0, severity="critical",
        items=(NotificationItem(transition=Transition.ISSUED, condition=eea(1)),),
        summary="CAISO EEA 3 active 17:17-20:00 PT")


async def test_ledger_admits_a_key_once_and_claims_atomically(store: Store) -> None:
    n = notification("k" * 40)
    lease = T0 + timedelta(seconds=60)
    async with store.begin() as conn:
        assert await ledger.admit(conn, [n], T0) == {n.key}
        assert await ledger.admit(conn, [n], T0) == set()
    async with store.begin() as conn:
        assert set(await ledger.claim(conn, [n], T0, lease)) == {n.key}
        # already sending, under a live lease
        assert await ledger.claim(conn, [n], T0, lease) == {}
        await ledger.settle(conn, [ledger.Verdict.retry(
            n.key, T0, ledger.AttemptRecord(1, T0, "email", "retry", status_code=451,
                                            latency_s=0.2),
            T0 + timedelta(seconds=5), "server: 451")])
    async with store.connect() as conn:
        assert await ledger.due(conn, T0) == []
        due = await ledger.due(conn, T0 + timedelta(seconds=5))
        assert [e.key for e in due] == [n.key]
        assert due[0].notification() == n
    later = T0 + timedelta(seconds=5)
    async with store.begin() as conn:
        [claimed] = (await ledger.claim(conn, [n], later,
                                        later + timedelta(seconds=60))).values()
        assert claimed.attempt_count == 1
        await ledger.settle(conn, [ledger.Verdict.delivered(
            n.key, later, ledger.AttemptRecord(2, later, "email", "delivered",
                                               status_code=250, latency_s=0.1))])
    async with store.connect() as conn:
        entry = await ledger.get(conn, n.key)
        assert entry is not None and entry.state == "delivered" and entry.attempt_count == 2
        assert entry.delivered_at is not None and entry.last_error is None
        assert [a["outcome"] for a in await ledger.attempts_for(conn, n.key)] == [
            "retry", "delivered"]
        assert await ledger.get(conn, n.key, tenant_id="other") is None
        assert await ledger.count_by_state(conn) == {"delivered": 1}


async def test_ledger_claims_a_crashed_senders_key_only_after_its_lease(store: Store) -> None:
    n = notification("l" * 40)
    lease = T0 + timedelta(seconds=60)
    async with store.begin() as conn:
        await ledger.admit(conn, [n], T0, handoff=False)
        assert set(await ledger.claim(conn, [n], T0, lease)) == {n.key}
    async with store.begin() as conn:
        assert await ledger.claim(conn, [n], lease - timedelta(seconds=1), lease) == {}
        [again] = (await ledger.claim(conn, [n], lease, lease + timedelta(seconds=60))).values()
        assert again.attempt_count == 0


async def test_timestamps_come_back_aware_in_utc(store: Store) -> None:
    async with store.begin() as conn:
        await conditions.record(conn, eea(1), T0)
    async with store.connect() as conn:
        row = (await conn.execute(sa.select(conditions.conditions.c.observed_at,
                                            conditions.conditions.c.window_start))).one()
    assert row.observed_at == T0 + timedelta(minutes=1)
    assert row.observed_at.tzinfo is not None and row.observed_at.utcoffset() == timedelta(0)
    assert row.window_start == datetime(2022, 9, 7, 0, 17, tzinfo=UTC)


async def plans_of(store: Store, table: str,
                   work: Callable[[AsyncConnection], Awaitable[None]]) -> list[str]:
    """The query plans SQLite chose for the UPDATEs of `table` that `work` made."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any,
                executemany: bool) -> None:
        if statement.startswith(f"UPDATE {table} "):
            seen.append((statement, params[0] if executemany else params))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with store.begin() as conn:
            await work(conn)
            return [" ".join(str(row[-1]) for row in await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, params)) for statement, params in seen]
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", capture)


# A fan-out's claims, and the closing of its batches, come in slices of its keys while
# thousands are pending: each must look up its own keys, or the fan-out costs the square of
# its size.

async def test_a_claim_reads_its_keys_not_every_pending_row(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await store.upgrade()
    ns = [notification(f"{i:040d}") for i in range(2_000)]
    got: dict[str, ledger.Claim] = {}

    async def claim(conn: AsyncConnection) -> None:
        got.update(await ledger.claim(conn, ns[:10], T0, T0 + timedelta(seconds=60)))

    try:
        async with store.begin() as conn:
            await ledger.admit(conn, ns, T0, handoff=False)
        [plan] = await plans_of(store, "notifications", claim)
    finally:
        await store.close()
    assert set(got) == {n.key for n in ns[:10]}
    assert "sqlite_autoindex_notifications_1 (key=?)" in plan
    assert "ix_notifications_state" not in plan


async def test_closing_single_item_batches_reads_their_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await store.upgrade()
    keys = [f"{i:040d}" for i in range(2_000)]
    single = [groups.Batch(key=k, subscription_id="s1", tenant_id="t1", item_keys=(k,))
              for k in keys[:300]]
    grouped = groups.Batch(key="g" * 40, subscription_id="s2", tenant_id="t1",
                           item_keys=tuple(keys[300:302]))
    try:
        async with store.begin() as conn:
            await conn.execute(decide_items.insert(), [
                {"item_key": k, "subscription_id": "s1", "tenant_id": "t1",
                 "state": "pending", "due_at": T0, "created_at": T0, "payload": {}}
                for k in keys])
        [alone, items] = await plans_of(
            store, "decide_items",
            lambda conn: groups.close(conn, [*single, grouped], "sent", T0))
        async with store.connect() as conn:
            rows = dict((await conn.execute(
                sa.select(decide_items.c.item_key, decide_items.c.batch_key)
                .where(decide_items.c.state == "sent"))).all())
    finally:
        await store.close()
    assert "sqlite_autoindex_decide_items_1 (item_key=?)" in alone
    assert "sqlite_autoindex_decide_items_1 (item_key=?)" in items
    assert rows == {**{k: k for k in keys[:300]}, keys[300]: "g" * 40, keys[301]: "g" * 40}


async def test_encoded_json_is_written_as_json_whole_or_inside_a_value(store: Store) -> None:
    n = notification("e" * 40)
    async with store.begin() as conn:
        await ledger.admit(conn, [n], T0)  # the payload is the notification's encoded JSON
        await conn.execute(decide_items.insert().values(
            item_key="i" * 40, subscription_id="s1", tenant_id="t1", state="sent",
            batch_key=n.key, due_at=T0, created_at=T0, flushed_at=T0,
            payload={"severity": "critical", "item": encoded_json(b'{"condition": {"id": "c"}}')}))
    async with store.connect() as conn:
        entry = await ledger.get(conn, n.key)
        assert entry is not None and entry.notification() == n
        [payload] = (await conn.execute(sa.select(decide_items.c.payload))).scalars()
    assert payload == {"severity": "critical", "item": {"condition": {"id": "c"}}}
