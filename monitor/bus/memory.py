"""The embedded bus: in-process, asyncio, zero setup.

It keeps records in memory only (everything decide needs after a restart is in the store),
partitions by key like Kafka, and runs consumer groups with rebalancing and explicit
acknowledgement, so the same contract tests pass here and on a real broker.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloudevents.core.base import BaseCloudEvent

from monitor.bus.base import AckTracker, Message, TopicPartition
from monitor.envelope import Record, to_record
from monitor.errors import BusError
from monitor.metrics import BUS_PUBLISHED
from monitor.topics import TOPIC_SPECS, TopicSpec

DEFAULT_PARTITIONS = 3
# Records every consumer group of a topic has committed past are dropped, except the last
# RETAIN of each partition (for `read_topic`, and as Kafka would still hold them): without
# this, a long-running embedded capmon would keep every notification it ever sent. Trimmed
# in steps of RETAIN, a partition holds up to twice that: at 1,000, the 12 partitions of the
# notifications topic held 24,000 sent notifications, 36 MB, after two fan-outs to 10,000.
RETAIN = 100


def partition_for(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass
class _Group:
    name: str
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[MemoryConsumer] = field(default_factory=list)
    # Every topic a member ever subscribed to: the group holds back their retention.
    topics: set[str] = field(default_factory=set)


@dataclass
class _Partition:
    """One partition's retained records; offsets stay those of the whole log."""

    base: int = 0
    records: list[Record] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.records)

    def trim(self, floor: int) -> None:
        """Drop records below `floor - RETAIN`, in large steps (a copy per step)."""
        cut = floor - RETAIN - self.base
        if cut >= RETAIN:
            del self.records[:cut]
            self.base += cut


class MemoryBus:
    name = "memory"

    def __init__(self) -> None:
        self._logs: dict[str, list[_Partition]] = {}
        self._groups: dict[str, _Group] = {}
        self._closed = False
        self._specs = {s.name: s.partitions for s in TOPIC_SPECS}

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for group in self._groups.values():
            for member in list(group.members):
                await member.close()

    async def ping(self) -> None:
        if self._closed:
            raise BusError("embedded bus is closed", reason="closed")

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        for spec in specs:
            self._specs[spec.name] = spec.partitions
            self._log(spec.name)

    def _log(self, topic: str) -> list[_Partition]:
        log = self._logs.get(topic)
        if log is None:
            log = [_Partition() for _ in range(self._specs.get(topic, DEFAULT_PARTITIONS))]
            self._logs[topic] = log
        return log

    def _committed(self, tp: TopicPartition) -> None:
        """A group's commit moved: records every group has passed may go."""
        topic, p = tp
        floor = min(g.committed.get(tp, 0) for g in self._groups.values() if topic in g.topics)
        self._log(topic)[p].trim(floor)

    def partitions(self, topic: str) -> int:
        return len(self._log(topic))

    async def publish(self, topic: str, key: str, event: BaseCloudEvent) -> None:
        # Encode exactly as Kafka would carry it, so the wire form is exercised here too.
        await self.publish_records(topic, [to_record(event, key)])

    async def publish_many(self, topic: str, items: Sequence[tuple[str, BaseCloudEvent]]) -> None:
        for key, event in items:
            await self.publish(topic, key, event)

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        if self._closed:
            raise BusError("embedded bus is closed", reason="closed", retriable=True)
        log = self._log(topic)
        for rec in records:
            log[partition_for(rec.key, len(log))].records.append(rec)
        BUS_PUBLISHED.labels(topic=topic).inc(len(records))
        for group in self._groups.values():
            for member in group.members:
                if topic in member.topics:
                    member.wake()
        await asyncio.sleep(0)

    async def read_topic(self, topic: str) -> list[Message]:
        return [Message(topic, p, part.base + i, rec)
                for p, part in enumerate(self._log(topic)) for i, rec in enumerate(part.records)]

    def subscribe(self, topics: Sequence[str], group: str) -> MemoryConsumer:
        grp = self._groups.setdefault(group, _Group(group))
        grp.topics.update(topics)
        return MemoryConsumer(self, grp, tuple(topics))

    # -- group coordination -------------------------------------------------------------------

    def _join(self, member: MemoryConsumer) -> None:
        member.group.members.append(member)
        self._rebalance(member.group)

    def _leave(self, member: MemoryConsumer) -> None:
        if member in member.group.members:
            member.group.members.remove(member)
            self._rebalance(member.group)

    def _rebalance(self, group: _Group) -> None:
        # Round-robin over members subscribed to each topic, like Kafka's round-robin assignor.
        wanted: dict[MemoryConsumer, set[TopicPartition]] = {m: set() for m in group.members}
        for topic in sorted({t for m in group.members for t in m.topics}):
            takers = [m for m in group.members if topic in m.topics]
            for p in range(self.partitions(topic)):
                wanted[takers[p % len(takers)]].add((topic, p))
        for member, tps in wanted.items():
            member.assign(frozenset(tps), {tp: group.committed.get(tp, 0) for tp in tps})


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, group: _Group, topics: tuple[str, ...]) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._positions: dict[TopicPartition, int] = {}
        self._trackers: dict[TopicPartition, AckTracker] = {}
        self._generation = 0
        self._wakeup = asyncio.Event()
        self._started = False
        self._rr = 0

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self.bus._join(self)

    def assign(self, tps: frozenset[TopicPartition], committed: dict[TopicPartition, int]) -> None:
        if tps == self._assigned:
            return
        self._generation += 1
        # As on Kafka, a rebalance restarts every partition from its committed offset.
        self._assigned = tps
        self._positions = dict(committed)
        self._trackers = {tp: AckTracker() for tp in tps}
        self.wake()

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    def wake(self) -> None:
        self._wakeup.set()

    def _next(self) -> Message | None:
        tps = sorted(self._assigned)
        for i in range(len(tps)):
            tp = tps[(self._rr + i) % len(tps)]
            part = self.bus._log(tp[0])[tp[1]]
            # Below the retained records (a group new to the topic): the earliest, as Kafka's
            # `auto_offset_reset="earliest"`.
            pos = max(self._positions.get(tp, 0), part.base)
            if pos < part.end:
                self._positions[tp] = pos + 1
                self._trackers[tp].hand_out(pos)
                self._rr = (self._rr + i + 1) % len(tps)
                return Message(tp[0], tp[1], pos, part.records[pos - part.base],
                               self._generation)
        return None

    async def get(self, timeout: float | None = None) -> Message | None:
        if not self._started:
            await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            msg = self._next()
            if msg is not None:
                return msg
            self._wakeup.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return None

    async def ack(self, message: Message) -> None:
        if message.generation != self._generation or message.tp not in self._trackers:
            return  # revoked since: the new owner has it from the committed offset
        tracker = self._trackers[message.tp]
        if tracker.ack(message.offset) and tracker.committable is not None:
            self.group.committed[message.tp] = tracker.committable
            self.bus._committed(message.tp)

    async def close(self) -> None:
        self.bus._leave(self)
        self._assigned = frozenset()

    async def abort(self) -> None:
        # Acks are committed as they come, so a crash loses nothing more than close does.
        await self.close()
