"""The consume loop's error policy (embedded and Kafka): an outage is retried for as long as
it lasts, a record that cannot be decoded is dead-lettered at once, one that keeps failing
is dead-lettered after its tries, a dead letter can be replayed, nothing is acknowledged
before it is handled or dead-lettered, and stop drains the work in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from cloudevents.core.v1.event import CloudEvent

from monitor.bus import Bus, Message
from monitor.bus.dead_letters import list_dead_letters, replay
from monitor.bus.runner import RetryPolicy, consume
from monitor.clock import ManualClock
from monitor.envelope import Record, condition_event, condition_from_event
from monitor.errors import BusError, StoreError
from monitor.events import Condition
from monitor.metrics import BUS_DEAD_LETTERS

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


def cond(i: int) -> Condition:
    return Condition(id=f"caiso.status:{i}", kind="caiso.status", severity="info",
                     status="active", attributes={}, revision=i, observed_at=T0)


def dead_count(topic: str, group: str) -> float:
    value: float = BUS_DEAD_LETTERS.labels(topic=topic, group=group)._value.get()
    return value


async def nothing_left(bus: Bus, topic: str, group: str) -> None:
    """Everything was acknowledged and committed: a new member of the group gets nothing."""
    again = bus.subscribe([topic], group)
    await again.start()
    assert await again.get(timeout=3) is None
    await again.close()


async def test_outage_retried_poison_and_bug_dead_lettered_then_replayed(
        bus: Bus, new_topic: Callable[[int], Awaitable[str]],
        unique: Callable[[str], str]) -> None:
    topic, dlq = await new_topic(1), await new_topic(1)
    group = unique("g")
    await bus.publish(topic, "caiso.status:1", condition_event(cond(1), "/t"))
    bogus = CloudEvent(attributes={"type": "com.example.other", "source": "/x"}, data={"x": 1})
    await bus.publish(topic, "bogus", bogus)
    await bus.publish_records(topic, [Record(key="\ufffd", value=b"\xff\x00not json",
                                             headers=())])
    await bus.publish(topic, "caiso.status:2", condition_event(cond(2), "/t"))
    await bus.publish(topic, "caiso.status:3", condition_event(cond(3), "/t"))

    clock = ManualClock(T0, auto_advance=True)
    stop = asyncio.Event()
    handled: list[int] = []
    tries = {2: 0, 3: 0}
    bug_fixed = asyncio.Event()

    async def handler(msg: Message) -> None:
        try:
            c = condition_from_event(msg.event())
        except BusError as exc:
            raise BusError(str(exc), reason="schema") from None
        if c.revision in tries:
            tries[c.revision] += 1
        if c.revision == 2 and tries[2] <= 8:  # a long outage: more tries than max_attempts
            raise StoreError("store unavailable: ConnectionRefusedError", retriable=True)
        if c.revision == 3 and not bug_fixed.is_set():
            raise ValueError("a bug meets revision 3")
        handled.append(c.revision)
        if c.revision == 3:
            stop.set()

    before = dead_count(topic, group)
    policy = RetryPolicy(max_attempts=3, first_backoff_s=0.01, max_backoff_s=0.05)
    task = asyncio.create_task(consume(bus, [topic], group, handler, stop, clock,
                                       dead_letters=dlq, policy=policy))

    async def letters(n: int) -> Sequence[object]:
        while len(found := await list_dead_letters(bus, dlq)) < n:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return found

    found = await asyncio.wait_for(letters(3), 60)
    assert handled == [1, 2], "the outage was retried past max_attempts, not dead-lettered"
    assert tries == {2: 9, 3: 3}
    assert dead_count(topic, group) == before + 3
    dead = await list_dead_letters(bus, dlq)
    assert [d.key for d in dead] == ["bogus", "\ufffd", "caiso.status:3"]
    assert [d.attempts for d in dead] == [1, 1, 3], "undecodable at once, the bug after 3"
    assert all(d.origin is not None and d.origin.startswith(f"{topic}/0/") for d in dead)
    assert dead[2].error == "ValueError: a bug meets revision 3" and dead[2].group == group
    assert dead[1].original().value == b"\xff\x00not json", "kept byte for byte"
    assert found

    # The bug is fixed: replaying the dead letter hands revision 3 to the handler again.
    bug_fixed.set()
    assert await replay(bus, [d for d in dead if d.key == "caiso.status:3"]) == 1
    await asyncio.wait_for(task, 60)
    assert handled == [1, 2, 3]
    await nothing_left(bus, topic, group)


class _FailingDeadLetters:
    """A bus whose dead letter publishes fail a few times (the broker is away)."""

    def __init__(self, inner: Bus, dlq: str, failures: int) -> None:
        self.inner, self.dlq, self.failures = inner, dlq, failures

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        if topic == self.dlq and self.failures:
            self.failures -= 1
            raise BusError("broker away", reason="publish", retriable=True)
        await self.inner.publish_records(topic, records)


async def test_a_record_is_acknowledged_only_once_its_dead_letter_is_out(
        bus: Bus, new_topic: Callable[[int], Awaitable[str]],
        unique: Callable[[str], str]) -> None:
    topic, dlq = await new_topic(1), await new_topic(1)
    group = unique("g")
    await bus.publish_records(topic, [Record(key="k", value=b"garbage", headers=())])
    clock = ManualClock(T0, auto_advance=True)
    stop = asyncio.Event()

    async def handler(msg: Message) -> None:
        msg.event()  # raises BusError(reason="schema")

    flaky = _FailingDeadLetters(bus, dlq, failures=2)
    task = asyncio.create_task(consume(
        flaky, [topic], group, handler, stop, clock, dead_letters=dlq,  # type: ignore[arg-type]
        policy=RetryPolicy(first_backoff_s=0.01)))
    while flaky.failures or not await list_dead_letters(bus, dlq):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 60)
    assert [d.key for d in await list_dead_letters(bus, dlq)] == ["k"]
    await nothing_left(bus, topic, group)


async def test_stop_drains_the_record_in_flight(
        bus: Bus, new_topic: Callable[[int], Awaitable[str]],
        unique: Callable[[str], str]) -> None:
    topic, dlq = await new_topic(1), await new_topic(1)
    group = unique("g")
    await bus.publish(topic, "caiso.status:1", condition_event(cond(1), "/t"))
    clock = ManualClock(T0, auto_advance=True)
    stop, release = asyncio.Event(), asyncio.Event()
    handled: list[int] = []

    async def handler(msg: Message) -> None:
        stop.set()  # stop arrives while this record is still being handled
        await release.wait()
        handled.append(condition_from_event(msg.event()).revision)

    task = asyncio.create_task(consume(bus, [topic], group, handler, stop, clock,
                                       dead_letters=dlq))
    await asyncio.wait_for(stop.wait(), 60)
    await asyncio.sleep(0.2)
    assert not task.done(), "stop must wait for the record in flight"
    release.set()
    await asyncio.wait_for(task, 60)
    assert handled == [1]
    await nothing_left(bus, topic, group)


async def test_stop_during_an_outage_leaves_the_record_for_the_next_owner(
        bus: Bus, new_topic: Callable[[int], Awaitable[str]],
        unique: Callable[[str], str]) -> None:
    topic, dlq = await new_topic(1), await new_topic(1)
    group = unique("g")
    await bus.publish(topic, "caiso.status:1", condition_event(cond(1), "/t"))
    clock = ManualClock(T0, auto_advance=True)
    stop = asyncio.Event()
    tries = 0

    async def down(_msg: Message) -> None:
        nonlocal tries
        tries += 1
        if tries == 3:
            stop.set()
        raise StoreError("store unavailable", retriable=True)

    await asyncio.wait_for(consume(bus, [topic], group, down, stop, clock, dead_letters=dlq,
                                   policy=RetryPolicy(first_backoff_s=0.01)), 60)
    assert await list_dead_letters(bus, dlq) == []
    again = bus.subscribe([topic], group)
    await again.start()
    msg = await again.get(timeout=10)
    assert msg is not None and msg.key == "caiso.status:1", "not acknowledged, handed out again"
    await again.close()
