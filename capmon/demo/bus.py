"""The bus as the demo's time driver sees it: every record published and acknowledged, counted.

`ObservedBus` wraps a real bus (embedded or Kafka) without changing what it does. It counts
records published per topic and acknowledged per (topic, consumer group), so the driver knows
when every consumer has finished with everything produced so far (`backlog() == 0`) before it
moves the scenario clock. With a `prefix`, topic and group names are namespaced on the broker
(`demo-1a2b.capmon.caiso.v1`), so a demo never reads an earlier run's records from a shared
Kafka cluster, while the roles keep using the names of monitor.topics.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any

from cloudevents.core.base import BaseCloudEvent

from monitor.bus.base import Bus, Consumer, Message
from monitor.envelope import Record
from monitor.topics import TopicSpec


class ObservedBus:
    def __init__(self, inner: Bus, *, prefix: str = "") -> None:
        self.inner = inner
        self.prefix = prefix
        self.name = getattr(inner, "name", "bus")
        self.published: Counter[str] = Counter()
        self.acked: Counter[tuple[str, str]] = Counter()
        self.groups: dict[str, set[str]] = {}

    def physical(self, topic: str) -> str:
        return self.prefix + topic

    def logical(self, topic: str) -> str:
        return topic[len(self.prefix):] if topic.startswith(self.prefix) else topic

    def backlog(self) -> int:
        """Records published but not yet acknowledged by every group that reads them."""
        return sum(max(0, self.published[t] - self.acked[(t, g)])
                   for g, topics in self.groups.items() for t in topics)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        await self.inner.ping()

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        await self.inner.ensure_topics(
            [dataclasses.replace(s, name=self.physical(s.name)) for s in specs])

    async def publish(self, topic: str, key: str, event: BaseCloudEvent) -> None:
        await self.inner.publish(self.physical(topic), key, event)
        self.published[topic] += 1

    async def publish_many(self, topic: str,
                           items: Sequence[tuple[str, BaseCloudEvent]]) -> None:
        await self.inner.publish_many(self.physical(topic), items)
        self.published[topic] += len(items)

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        await self.inner.publish_records(self.physical(topic), records)
        self.published[topic] += len(records)

    async def read_topic(self, topic: str) -> list[Message]:
        return [dataclasses.replace(m, topic=topic)
                for m in await self.inner.read_topic(self.physical(topic))]

    def subscribe(self, topics: Sequence[str], group: str) -> Consumer:
        self.groups.setdefault(group, set()).update(topics)
        inner = self.inner.subscribe([self.physical(t) for t in topics], self.prefix + group)
        return _ObservedConsumer(self, inner, group)


class _ObservedConsumer:
    def __init__(self, bus: ObservedBus, inner: Consumer, group: str) -> None:
        self._bus = bus
        self._inner = inner
        self._group = group

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def start(self) -> None:
        await self._inner.start()

    async def get(self, timeout: float | None = None) -> Message | None:
        message = await self._inner.get(timeout)
        if message is None:
            return None
        # Handlers see the logical topic, as they would without the prefix.
        return dataclasses.replace(message, topic=self._bus.logical(message.topic))

    async def ack(self, message: Message) -> None:
        await self._inner.ack(dataclasses.replace(message,
                                                  topic=self._bus.physical(message.topic)))
        self._bus.acked[(message.topic, self._group)] += 1

    async def close(self) -> None:
        await self._inner.close()

    async def abort(self) -> None:
        await self._inner.abort()
