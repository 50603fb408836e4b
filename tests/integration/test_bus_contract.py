"""The bus contract, written once, run on the embedded bus and on a real Kafka broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from monitor.bus import Bus, Consumer, Message
from monitor.envelope import condition_event, condition_from_event
from monitor.events import Condition
from monitor.metrics import BUS_PUBLISHED

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)
NewTopic = Callable[[int], Awaitable[str]]


def cond(cid: str, revision: int) -> Condition:
    return Condition(
        id=f"caiso.status:{cid}", kind="caiso.status", severity="info", status="active",
        attributes={"current_demand_mw": 40000 + revision}, revision=revision,
        observed_at=T0 + timedelta(seconds=revision),
    )


async def publish(bus: Bus, topic: str, conditions: list[Condition]) -> None:
    items = [(c.id, condition_event(c, "/capmon/test")) for c in conditions]
    for i in range(0, len(items), 500):
        await bus.publish_many(topic, items[i:i + 500])


async def drain(sub: Consumer, want: int, *, ack: bool = True,
                deadline_s: float = 60.0) -> list[Message]:
    got: list[Message] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while len(got) < want and loop.time() < end:
        msg = await sub.get(timeout=0.5)
        if msg is None:
            continue
        got.append(msg)
        if ack:
            await sub.ack(msg)
    return got


async def until(predicate: Callable[[], bool], subs: list[Consumer],
                inbox: dict[int, list[Message]], deadline_s: float = 45.0) -> None:
    """Drive the members' polls (rebalances happen while polling) until predicate holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached before the deadline")
        for i, sub in enumerate(subs):
            msg = await sub.get(timeout=0.1)
            if msg is not None:
                inbox[i].append(msg)
                await sub.ack(msg)


async def test_revisions_of_one_key_arrive_in_order(bus: Bus, new_topic: NewTopic,
                                                    unique: Callable[[str], str]) -> None:
    topic = await new_topic(3)
    conditions = [cond(f"k{k}", rev) for rev in range(1, 101) for k in range(5)]
    await publish(bus, topic, conditions)
    sub = bus.subscribe([topic], unique("g"))
    await sub.start()
    got = await drain(sub, len(conditions))
    await sub.close()
    per_key: dict[str, list[int]] = defaultdict(list)
    partition_of: dict[str, set[int]] = defaultdict(set)
    for msg in got:
        c = condition_from_event(msg.event())
        assert msg.key == c.id
        per_key[c.id].append(c.revision)
        partition_of[c.id].add(msg.partition)
    assert len(per_key) == 5
    assert BUS_PUBLISHED.labels(topic=topic)._value.get() == len(conditions)
    for key, revisions in per_key.items():
        assert revisions == list(range(1, 101)), key
        assert len(partition_of[key]) == 1, "one key must stay on one partition"


async def test_ten_thousand_conditions_none_lost_none_duplicated(
        bus: Bus, new_topic: NewTopic, unique: Callable[[str], str]) -> None:
    topic = await new_topic(6)
    conditions = [cond(f"n{i % 97}", i) for i in range(10_000)]
    await publish(bus, topic, conditions)
    sub = bus.subscribe([topic], unique("g"))
    await sub.start()
    got = await drain(sub, 10_000, deadline_s=120)
    # Nothing more arrives after the last one: no duplicates behind the count.
    extra = await sub.get(timeout=1.0)
    await sub.close()
    assert extra is None
    ids = [msg.event().get_id() for msg in got]
    assert len(ids) == 10_000
    assert set(ids) == {c.event_id() for c in conditions}


async def test_unacknowledged_record_is_redelivered_to_the_next_member(
        bus: Bus, new_topic: NewTopic, unique: Callable[[str], str]) -> None:
    topic = await new_topic(1)
    group = unique("g")
    await publish(bus, topic, [cond("a", 1), cond("a", 2), cond("a", 3)])

    first = bus.subscribe([topic], group)
    await first.start()
    handled = await drain(first, 1)  # revision 1 handled and acknowledged
    crashed = await drain(first, 1, ack=False)  # revision 2 taken, then the member dies
    assert condition_from_event(crashed[0].event()).revision == 2
    if hasattr(first, "commit"):
        await first.commit()
    await first.abort()

    second = bus.subscribe([topic], group)
    await second.start()
    got = await drain(second, 2)
    await second.close()
    assert [condition_from_event(m.event()).revision for m in got] == [2, 3]
    assert got[0].offset == crashed[0].offset
    assert handled[0].offset < got[0].offset


async def test_two_members_split_partitions_and_take_over_on_shutdown(
        bus: Bus, new_topic: NewTopic, unique: Callable[[str], str]) -> None:
    topic = await new_topic(4)
    group = unique("g")
    a = bus.subscribe([topic], group)
    b = bus.subscribe([topic], group)
    inbox: dict[int, list[Message]] = defaultdict(list)
    await a.start()
    await b.start()
    # Views lag while a rebalance is in flight; wait until it settles into a split.
    await until(lambda: bool(a.assignment()) and bool(b.assignment())
                and not a.assignment() & b.assignment()
                and len(a.assignment() | b.assignment()) == 4, [a, b], inbox)

    batch1 = [cond(f"s{i}", 1) for i in range(40)]
    await publish(bus, topic, batch1)
    await until(lambda: len(inbox[0]) + len(inbox[1]) >= 40, [a, b], inbox)
    assert inbox[0] and inbox[1], "both members get work"
    assert {m.partition for m in inbox[0]} <= {p for _, p in a.assignment()}
    assert {m.partition for m in inbox[1]} <= {p for _, p in b.assignment()}

    await b.close()
    await until(lambda: len(a.assignment()) == 4, [a], inbox)
    batch2 = [cond(f"s{i}", 2) for i in range(40)]
    await publish(bus, topic, batch2)
    await until(lambda: sum(1 for m in inbox[0]
                            if condition_from_event(m.event()).revision == 2) >= 40, [a], inbox)
    await a.close()
    seen = [(condition_from_event(m.event()).id, condition_from_event(m.event()).revision)
            for m in inbox[0] + inbox[1]]
    assert sorted(seen) == sorted({(c.id, c.revision) for c in batch1 + batch2})
