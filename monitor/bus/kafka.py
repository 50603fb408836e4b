"""The Kafka bus (aiokafka): idempotent producer, consumer groups with explicit commits.

Offsets are committed only for acknowledged records (the handler finished), in batches, on
partition revocation and on close. A crash therefore redelivers whatever was not settled;
the ledger and the deterministic keys make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata
from cloudevents.core.base import BaseCloudEvent

from monitor.bus.base import AckTracker, Message
from monitor.bus.base import TopicPartition as TP
from monitor.config import KafkaSettings
from monitor.envelope import Record, to_record
from monitor.errors import BusError
from monitor.metrics import BUS_PUBLISHED

log = structlog.get_logger(__name__)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by producer, consumer and admin client."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.sasl_mechanism:
        opts["sasl_mechanism"] = settings.sasl_mechanism
        opts["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            opts["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        opts["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile, certfile=settings.ssl_certfile, keyfile=settings.ssl_keyfile
        )
    return opts


class KafkaBus:
    name = "kafka"

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **client_options(self.settings),
            enable_idempotence=True,
            acks="all",
            linger_ms=self.settings.linger_ms,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BusError(f"cannot reach Kafka at {self.settings.bootstrap}: {exc}",
                           reason="connect", retriable=True) from exc
        self._producer = producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BusError("Kafka bus not started", reason="closed")
        return self._producer

    async def ping(self) -> None:
        producer = self._require_producer()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=5)
        except (KafkaError, TimeoutError) as exc:
            raise BusError(f"Kafka metadata request failed: {exc}", reason="connect") from exc

    async def ensure_topics(self, specs: Sequence[Any]) -> None:
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            new = [
                NewTopic(
                    name=s.name,
                    num_partitions=s.partitions,
                    replication_factor=self.settings.replication_factor,
                    topic_configs={"retention.ms": str(s.retention_ms),
                                   "cleanup.policy": s.cleanup_policy},
                )
                for s in specs
                if s.name not in existing
            ]
            if new:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(new)
        finally:
            await admin.close()

    async def publish(self, topic: str, key: str, event: BaseCloudEvent) -> None:
        await self.publish_many(topic, [(key, event)])

    async def publish_many(self, topic: str, items: Sequence[tuple[str, BaseCloudEvent]]) -> None:
        await self.publish_records(topic, [to_record(event, key) for key, event in items])

    async def publish_records(self, topic: str, records: Sequence[Record]) -> None:
        producer = self._require_producer()
        try:
            futures = [await producer.send(topic, value=rec.value, key=rec.key.encode("utf-8"),
                                           headers=list(rec.headers)) for rec in records]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BusError(f"publish to {topic} failed: {exc}", reason="publish",
                           retriable=getattr(exc, "retriable", False)) from exc
        BUS_PUBLISHED.labels(topic=topic).inc(len(records))

    async def read_topic(self, topic: str) -> list[Message]:
        consumer = AIOKafkaConsumer(**client_options(self.settings), enable_auto_commit=False)
        try:
            await consumer.start()
            parts = await self._require_producer().partitions_for(topic)
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[Message] = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    out.extend(_message(r) for r in batch.get(tp, []))
            return out
        except KafkaError as exc:
            raise BusError(f"reading {topic} failed: {exc}", reason="consume",
                           retriable=True) from exc
        finally:
            await consumer.stop()

    def subscribe(self, topics: Sequence[str], group: str) -> KafkaConsumer:
        return KafkaConsumer(self.settings, tuple(topics), group)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sub: KafkaConsumer) -> None:
        self.sub = sub

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.sub._on_revoked({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.sub._on_assigned({(tp.topic, tp.partition) for tp in assigned})


class KafkaConsumer:
    def __init__(self, settings: KafkaSettings, topics: tuple[str, ...], group: str) -> None:
        self.settings = settings
        self.topics = topics
        self.group = group
        self._consumer: AIOKafkaConsumer | None = None
        self._buffer: deque[Message] = deque()
        self._trackers: dict[TP, AckTracker] = {}
        self._dirty: set[TP] = set()
        self._generation = 0
        self._aborted = False
        self._committer: asyncio.Task[None] | None = None
        self._commit_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            max_poll_records=self.settings.max_poll_records,
        )
        consumer.subscribe(list(self.topics), listener=_Listener(self))
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise BusError(f"consumer cannot reach Kafka: {exc}", reason="connect",
                           retriable=True) from exc
        self._consumer = consumer
        self._committer = asyncio.create_task(self._commit_loop())

    def assignment(self) -> frozenset[TP]:
        if self._consumer is None:
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def _on_revoked(self, revoked: set[TP]) -> None:
        if not self._aborted:
            await self.commit(only=revoked)
        self._generation += 1
        self._buffer = deque(m for m in self._buffer if m.tp not in revoked)
        for tp in revoked:
            self._trackers.pop(tp, None)
            self._dirty.discard(tp)

    def _on_assigned(self, assigned: set[TP]) -> None:
        for tp in assigned:
            self._trackers.setdefault(tp, AckTracker())

    async def get(self, timeout: float | None = None) -> Message | None:
        if self._consumer is None:
            await self.start()
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            remaining = 1.0 if deadline is None else min(1.0, deadline - loop.time())
            if remaining <= 0:
                return None
            batches = await self._consumer.getmany(timeout_ms=int(remaining * 1000))
            for records in batches.values():
                self._buffer.extend(_message(r, self._generation) for r in records)
        msg = self._buffer.popleft()
        self._trackers.setdefault(msg.tp, AckTracker()).hand_out(msg.offset)
        return msg

    async def ack(self, message: Message) -> None:
        tracker = self._trackers.get(message.tp)
        if message.generation != self._generation or tracker is None:
            return  # partition moved to another member, which re-reads from the commit
        if tracker.ack(message.offset):
            self._dirty.add(message.tp)

    async def commit(self, only: set[TP] | None = None) -> None:
        async with self._commit_lock:
            if self._consumer is None:
                return
            offsets = {}
            for tp in list(self._dirty):
                if only is not None and tp not in only:
                    continue
                tracker = self._trackers.get(tp)
                if tracker is not None and tracker.committable is not None:
                    offsets[TopicPartition(*tp)] = OffsetAndMetadata(tracker.committable, "")
                self._dirty.discard(tp)
            if offsets:
                try:
                    await self._consumer.commit(offsets)
                except KafkaError as exc:
                    # A failed commit only means redelivery; log it, never crash the consumer.
                    log.warning("kafka_commit_failed", group=self.group, error=str(exc))

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            await self.commit()

    async def _stop(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def close(self) -> None:
        await self.commit()
        await self._stop()

    async def abort(self) -> None:
        self._aborted = True
        await self._stop()


def _message(r: Any, generation: int = 0) -> Message:
    # A key that is not UTF-8 must reach the handler (and the dead letters), not stop the loop.
    key = r.key.decode("utf-8", "replace") if r.key else ""
    record = Record(key=key, value=r.value or b"", headers=tuple(r.headers or ()))
    return Message(r.topic, r.partition, r.offset, record, generation)
