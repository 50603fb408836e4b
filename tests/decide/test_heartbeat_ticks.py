"""Decide's ticker sends each heartbeat once, at its local time, saying which sources are
current; a tick that repeats, or one after a gap, never sends a second or a late one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumers.decide.decider import DecideConfig, Decider
from monitor import ledger
from monitor.attributes import SourceHealthAttributes
from monitor.bus import MemoryBus
from monitor.clock import PACIFIC, ManualClock
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.notifications import Transition, notification_from_event
from monitor.store import Store
from monitor.store import conditions as condition_store
from monitor.topics import NOTIFICATIONS, TOPIC_SPECS
from tests.decide.conftest import add_subscription, add_tenant

SOURCES = ("caiso-flex", "caiso-stats", "sce-dr")


async def test_one_heartbeat_a_day_at_the_subscribers_time(store: Store) -> None:
    tenant = await add_tenant(store, "Heartbeat CCA")
    sub = await add_subscription(store, tenant, {
        "name": "desk", "channel": {"type": "webhook", "url": "https://desk.cca.example/h"},
        "match": {"kinds": ["caiso.eea"]}, "heartbeat": {"at": "08:00"}})
    start = datetime(2022, 9, 6, 7, 0, tzinfo=PACIFIC)
    clock = ManualClock(start.astimezone(UTC))
    # capmon cannot see SCE since 06:40.
    async with store.begin() as conn:
        blind_at = datetime(2022, 9, 6, 6, 40, tzinfo=PACIFIC).astimezone(UTC)
        await condition_store.record_revision(conn, Condition(
            id="source.health:sce-dr", kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
            status=Status.ACTIVE, window={"start": blind_at},
            attributes=SourceHealthAttributes(source="sce-dr", reason="connect",
                                              last_error="cannot resolve www.sce.com"),
            revision=revision_at(blind_at), observed_at=blind_at), blind_at)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    reader = bus.subscribe([NOTIFICATIONS], "reader")
    await reader.start()
    decider = Decider(store, bus, clock, DecideConfig(sources=SOURCES))
    await decider.refresh_index(force=True)

    await decider.tick()
    wake = await decider.next_wakeup(clock.now())
    assert wake == datetime(2022, 9, 6, 8, 0, tzinfo=PACIFIC)
    assert await reader.get(timeout=0.05) is None
    for minutes in (60, 61, 90):  # 08:00, then two more ticks the same morning
        clock.set((start + timedelta(minutes=minutes)).astimezone(UTC))
        await decider.tick()
    msg = await reader.get(timeout=0.5)
    assert msg is not None
    n = notification_from_event(msg.event())
    await reader.ack(msg)
    assert n.subscription_id == sub and n.items[0].transition == Transition.HEARTBEAT
    assert n.summary == "capmon is watching: 2 of 3 sources current; cannot see SCE DR events"
    assert n.decided_at == datetime(2022, 9, 6, 8, 0, tzinfo=PACIFIC)
    assert await reader.get(timeout=0.05) is None

    # decide down from 09:00 on the 6th to 09:00 on the 7th: the 7th's 08:00 is not sent late.
    clock.set(datetime(2022, 9, 7, 9, 0, tzinfo=PACIFIC).astimezone(UTC))
    restarted = Decider(store, bus, clock, DecideConfig(sources=SOURCES))
    await restarted.refresh_index(force=True)
    await restarted.tick()
    assert await reader.get(timeout=0.05) is None
    clock.set(datetime(2022, 9, 8, 8, 0, 30, tzinfo=PACIFIC).astimezone(UTC))
    await restarted.tick()
    nxt = await reader.get(timeout=0.5)
    assert nxt is not None
    await reader.ack(nxt)
    async with store.connect() as conn:
        beats = await ledger.list_entries(conn, subscription_id=sub)
    assert len(beats) == 2
