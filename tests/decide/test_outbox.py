"""Decide's ledger is its outbox: a revision's notifications are admitted in its own
transaction and published after commit, at a cost in statements that does not grow with the
number of subscribers; a publish that is lost loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from consumers.decide.decider import Decider
from monitor import ledger
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.errors import BusError
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.notifications import notification_from_event
from monitor.store import Store
from monitor.store.schema import decide_items
from monitor.topics import NOTIFICATIONS, TOPIC_SPECS
from tests.decide.conftest import add_subscription, add_tenant

ISSUED = datetime(2022, 9, 7, 0, 26, tzinfo=UTC)


def eea3(notice: str, at: datetime = ISSUED) -> Condition:
    return Condition(
        id=f"caiso.notice:{notice}", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE, regions=("CAISO Grid",),
        window={"start": at - timedelta(minutes=9), "end": at + timedelta(hours=3)},
        attributes=NoticeAttributes(notice_no=notice, level="3"),
        revision=revision_at(at), observed_at=at)


async def subscribers(store: Store, n: int) -> list[str]:
    tenant = await add_tenant(store, f"Outbox CCA {n}")
    return [await add_subscription(store, tenant, {
        "name": f"desk {i}", "channel": {"type": "webhook", "url": f"https://h{i}.cca.example/"},
        "match": {"kinds": ["caiso.eea"]}}) for i in range(n)]


class Statements:
    """Counts the statements a store executes (an executemany counts once)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self.texts: list[str] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", self._seen)
        self.store = store

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += 1
        self.texts.append(" ".join(statement.split()))

    def close(self) -> None:
        event.remove(self.store.engine.sync_engine, "before_cursor_execute", self._seen)


async def statements_for(store: Store, n: int, notice: str) -> tuple[int, int]:
    """Statements to decide one EEA 3 for n fresh subscribers; notifications published."""
    await subscribers(store, n)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    reader = bus.subscribe([NOTIFICATIONS], f"reader-{notice}")
    await reader.start()
    decider = Decider(store, bus, ManualClock(ISSUED))
    await decider.refresh_index(force=True)
    counter = Statements(store)
    try:
        await decider.handle(eea3(notice))
    finally:
        counter.close()
    published = 0
    while (msg := await reader.get(timeout=0.05)) is not None:
        published += 1
        await reader.ack(msg)
    return counter.count, published


async def test_a_revision_costs_the_same_statements_for_1_or_300_subscribers(
        store: Store) -> None:
    one, published_one = await statements_for(store, 1, "202200001")
    many, published_many = await statements_for(store, 300, "202200002")
    assert published_one == 1
    assert published_many == 301  # the second revision also reaches the first subscriber
    assert many == one


async def test_a_fan_outs_items_are_logged_once_closed_and_never_updated(store: Store) -> None:
    subs = await subscribers(store, 40)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    decider = Decider(store, bus, ManualClock(ISSUED))
    await decider.refresh_index(force=True)
    counter = Statements(store)
    try:
        await decider.handle(eea3("202200004"))
    finally:
        counter.close()
    # Each subscriber's only item, due at once with no open batch: a batch of itself.
    assert not [t for t in counter.texts if t.startswith("UPDATE decide_items")]
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(
            decide_items.c.subscription_id, decide_items.c.item_key, decide_items.c.state,
            decide_items.c.batch_key, decide_items.c.flushed_at))).all()
        entries = await ledger.list_entries(conn, limit=100)
    assert {r.subscription_id for r in rows} == set(subs)
    assert {r.state for r in rows} == {"sent"}
    assert all(r.batch_key == r.item_key and r.flushed_at is not None for r in rows)
    # ...admitted under that key, one notification each.
    assert {e.key for e in entries} == {r.item_key for r in rows}


class LosingBus(MemoryBus):
    """A broker that refuses every notification publish (down, or decide killed after its
    commit: either way the record never reaches deliver)."""

    async def publish_records(self, topic: str, records: Any) -> None:
        if topic == NOTIFICATIONS:
            raise BusError("broker unavailable", reason="connect", retriable=True)
        await super().publish_records(topic, records)


async def test_a_lost_publish_is_in_the_ledger_for_delivers_scheduler(store: Store) -> None:
    subs = await subscribers(store, 3)
    bus = LosingBus()
    await bus.start()
    clock = ManualClock(ISSUED)
    decider = Decider(store, bus, clock)
    await decider.refresh_index(force=True)
    await decider.handle(eea3("202200003"))  # does not raise: the revision is decided
    async with store.connect() as conn:
        entries = await ledger.list_entries(conn, limit=10)
        assert {e.subscription_id for e in entries} == set(subs)
        assert {e.state for e in entries} == {ledger.State.PENDING}
        # Not due for the scheduler during the handoff, due after it.
        assert await ledger.due(conn, ISSUED) == []
        due = await ledger.due(conn, ISSUED + ledger.HANDOFF)
    assert {e.key for e in due} == {e.key for e in entries}
    # The same revision again (the runner's redelivery) publishes nothing twice.
    bus2 = MemoryBus()
    await bus2.start()
    await bus2.ensure_topics(TOPIC_SPECS)
    reader = bus2.subscribe([NOTIFICATIONS], "reader")
    await reader.start()
    again = Decider(store, bus2, clock)
    await again.refresh_index(force=True)
    await again.handle(eea3("202200003"))
    assert await reader.get(timeout=0.05) is None


@pytest.mark.parametrize("n", [1, 5])
async def test_published_notifications_are_exactly_the_admitted_ones(
        store: Store, n: int) -> None:
    await subscribers(store, n)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    reader = bus.subscribe([NOTIFICATIONS], "reader")
    await reader.start()
    decider = Decider(store, bus, ManualClock(ISSUED))
    await decider.refresh_index(force=True)
    await decider.handle(eea3(f"20220001{n}"))
    keys = set()
    while (msg := await reader.get(timeout=0.05)) is not None:
        keys.add(notification_from_event(msg.event()).key)
        await reader.ack(msg)
    async with store.connect() as conn:
        admitted = {e.key for e in await ledger.list_entries(conn, limit=100)}
    assert keys == admitted and len(keys) == n
