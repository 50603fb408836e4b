"""The embedded bus drops what every consumer group of a topic has committed past (all but
the last `RETAIN` of a partition), so a long-running embedded capmon does not keep every
notification it ever sent; a group that lags holds the records it has not read."""

from __future__ import annotations

from monitor.bus import MemoryBus
from monitor.bus.memory import RETAIN
from monitor.metrics import BUS_PUBLISHED
from tests.integration.test_bus_contract import cond, drain, publish

TOPIC = "capmon.test.retention"
N = 6 * RETAIN


async def test_records_every_group_has_passed_are_dropped_and_offsets_kept() -> None:
    bus = MemoryBus()
    await bus.ensure_topics([])
    fast = bus.subscribe([TOPIC], "fast")
    slow = bus.subscribe([TOPIC], "slow")
    await fast.start()
    await slow.start()
    await publish(bus, TOPIC, [cond(f"c{i}", 1) for i in range(N)])
    assert len(await bus.read_topic(TOPIC)) == N

    await drain(fast, N)
    # The slow group has read nothing: every record is still there for it.
    assert len(await bus.read_topic(TOPIC)) == N

    got = await drain(slow, N)
    assert len({(m.partition, m.offset) for m in got}) == N
    kept = await bus.read_topic(TOPIC)
    assert len(kept) < N
    # At least the last RETAIN of each partition stay, at their original offsets.
    for p in range(bus.partitions(TOPIC)):
        offsets = sorted(m.offset for m in kept if m.partition == p)
        end = max(m.offset for m in got if m.partition == p) + 1
        assert offsets == list(range(offsets[0], end))
        assert len(offsets) >= min(RETAIN, end)

    # A record published now is read at the next offset by both groups.
    await publish(bus, TOPIC, [cond("late", 1)])
    [a] = await drain(fast, 1)
    [b] = await drain(slow, 1)
    assert (a.partition, a.offset) == (b.partition, b.offset)
    assert a.offset == max(m.offset for m in got if m.partition == a.partition) + 1


async def test_a_group_new_to_a_trimmed_topic_starts_at_the_earliest_record_kept() -> None:
    bus = MemoryBus()
    first = bus.subscribe([TOPIC], "first")
    await first.start()
    await publish(bus, TOPIC, [cond(f"c{i}", 1) for i in range(N)])
    await drain(first, N)
    kept = await bus.read_topic(TOPIC)
    assert len(kept) < N
    late = bus.subscribe([TOPIC], "late")
    got = await drain(late, len(kept))
    assert sorted((m.partition, m.offset) for m in got) == sorted(
        (m.partition, m.offset) for m in kept)


async def test_published_records_are_counted_by_topic() -> None:
    bus = MemoryBus()
    await bus.ensure_topics([])
    before = BUS_PUBLISHED.labels(topic=TOPIC)._value.get()
    await publish(bus, TOPIC, [cond(f"c{i}", 1) for i in range(3)])
    assert BUS_PUBLISHED.labels(topic=TOPIC)._value.get() - before == 3
