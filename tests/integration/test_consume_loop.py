"""The consume loop: poison records are skipped and counted, retriable failures retried,
and stop drains the work in flight before leaving the group (embedded and Kafka)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cloudevents.core.v1.event import CloudEvent

from monitor.bus import Bus, Message
from monitor.bus.runner import consume
from monitor.clock import ManualClock
from monitor.envelope import condition_event, condition_from_event
from monitor.errors import StoreError
from monitor.events import Condition
from monitor.metrics import BUS_POISON

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


def cond(i: int) -> Condition:
    return Condition(id=f"caiso.status:{i}", kind="caiso.status", severity="info",
                     status="active", attributes={}, revision=i, observed_at=T0)


async def test_poison_skipped_retriable_retried_and_stop_drains(
        bus: Bus, new_topic: Callable[[int], Awaitable[str]],
        unique: Callable[[str], str]) -> None:
    topic = await new_topic(1)
    group = unique("g")
    await bus.publish(topic, "caiso.status:1", condition_event(cond(1), "/t"))
    bogus = CloudEvent(attributes={"type": "com.example.other", "source": "/x"}, data={"x": 1})
    await bus.publish(topic, "bogus", bogus)
    await bus.publish(topic, "caiso.status:2", condition_event(cond(2), "/t"))

    clock = ManualClock(T0, auto_advance=True)
    stop = asyncio.Event()
    handled: list[int] = []
    failures = {"left": 2}
    release = asyncio.Event()

    async def handler(msg: Message) -> None:
        c = condition_from_event(msg.event())  # raises BusError (not retriable) for bogus
        if c.revision == 2:
            if failures["left"]:
                failures["left"] -= 1
                raise StoreError("database is locked", retriable=True)
            stop.set()  # stop arrives while this record is still being handled
            await release.wait()
        handled.append(c.revision)

    poison_before = BUS_POISON.labels(topic=topic, group=group)._value.get()
    task = asyncio.create_task(consume(bus, [topic], group, handler, stop, clock))
    await asyncio.wait_for(stop.wait(), 60)
    await asyncio.sleep(0.2)
    assert not task.done(), "stop must wait for the record in flight"
    release.set()
    await asyncio.wait_for(task, 60)
    assert handled == [1, 2]
    assert failures["left"] == 0
    assert BUS_POISON.labels(topic=topic, group=group)._value.get() == poison_before + 1

    # Everything was acknowledged and committed: a new member of the group gets nothing.
    again = bus.subscribe([topic], group)
    await again.start()
    assert await again.get(timeout=3) is None
    await again.close()
