"""The bus contract: publish by key, consume as a group, acknowledge explicitly.

Both implementations (`memory`, `kafka`) follow Kafka's semantics where they matter: records of
one key stay in order on one partition; a group splits partitions among its members; a record
handed out but not acknowledged is handed out again to whichever member owns its partition
next; publishing never runs a handler.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cloudevents.core.base import BaseCloudEvent

from monitor.envelope import Record, from_record
from monitor.topics import TopicSpec

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    record: Record
    # Which consumer generation handed it out: an ack from before a rebalance is stale.
    generation: int = 0

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)

    def event(self) -> BaseCloudEvent:
        """Decode the CloudEvent; raises BusError on a record that is not one."""
        return from_record(self.record)


class Consumer(Protocol):
    """One member of a consumer group."""

    async def start(self) -> None: ...

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next record, or None when `timeout` seconds pass without one."""
        ...

    async def ack(self, message: Message) -> None:
        """The record is fully handled; its offset may be committed."""
        ...

    async def close(self) -> None:
        """Leave the group after committing what was acknowledged."""
        ...

    async def abort(self) -> None:
        """Leave the group without committing anything more (what a crash does)."""
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...


class Bus(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None: ...

    async def publish(self, topic: str, key: str, event: BaseCloudEvent) -> None:
        """Returns once the record is durably accepted (acks=all on Kafka)."""
        ...

    async def publish_many(self, topic: str, items: Sequence[tuple[str, BaseCloudEvent]]) -> None:
        """Publish several records, pipelined; returns once all are accepted."""
        ...

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        """Publish records as they are (dead letters keep the bytes that could not be read)."""
        ...

    async def read_topic(self, topic: str) -> list[Message]:
        """Every record the topic holds now, outside any group (for inspecting dead letters)."""
        ...

    def subscribe(self, topics: Sequence[str], group: str) -> Consumer: ...

    async def ping(self) -> None:
        """Raise BusError when the bus cannot serve (readiness)."""
        ...


@dataclass
class AckTracker:
    """Which offsets of one partition may be committed.

    Offsets are handed out in order but may be acknowledged out of order (concurrent
    handlers), and compacted topics have gaps, so the commit point is the offset after the
    longest handed-out prefix that is fully acknowledged.
    """

    handed: deque[int] = field(default_factory=deque)
    acked: set[int] = field(default_factory=set)
    committable: int | None = None

    def hand_out(self, offset: int) -> None:
        self.handed.append(offset)

    def ack(self, offset: int) -> bool:
        """Record an ack; True when the commit point moved."""
        self.acked.add(offset)
        moved = False
        while self.handed and self.handed[0] in self.acked:
            done = self.handed.popleft()
            self.acked.discard(done)
            self.committable = done + 1
            moved = True
        return moved
