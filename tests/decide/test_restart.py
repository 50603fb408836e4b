"""Restart safety: kill decide mid-stream (right after its publish of a committed batch reached
the broker, before the record is acknowledged), restart it, and the ledger holds exactly the
keys of an uninterrupted run. The ledger is decide's outbox: nothing is published that is not
admitted, nothing is published twice, and whatever a crash kept off the bus is due in the
ledger, where deliver's scheduler sends it. On the embedded bus and on real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from consumers.decide.decider import DecideConfig, Decider, decode
from monitor import ledger
from monitor.bus import Bus, MemoryBus
from monitor.bus.base import Message
from monitor.bus.runner import consume
from monitor.clock import ManualClock
from monitor.envelope import Record, condition_event
from monitor.events import Condition
from monitor.notifications import notification_from_event
from monitor.store import Store
from monitor.store import conditions as condition_store
from monitor.store.schema import decide_items
from monitor.topics import TopicSpec
from tests.decide.conftest import T0, add_subscription, add_tenant
from tests.decide.timeline import heatwave

PT = ZoneInfo("America/Los_Angeles")
# Sep 5 09:00 to Sep 7 06:00: EEA 1, 2, 3, a transmission emergency, Flex Alerts.
REVISIONS = [c for c in heatwave()
             if datetime(2022, 9, 5, 9, tzinfo=PT) <= c.observed_at
             < datetime(2022, 9, 7, 6, tzinfo=PT)]
END = datetime(2022, 9, 7, 6, 0, tzinfo=PT)
SUBS = {
    "00000000-0000-4000-8000-000000000001": {
        "name": "everything", "channel": {"type": "sms", "phone": "+14155550100"},
        "match": {"min_severity": "advisory"}, "repeat_interval": "PT2H",
        "transitions": ["issued", "updated", "started", "ended", "cancelled", "reminder"]},
    "00000000-0000-4000-8000-000000000002": {
        "name": "eea2+", "channel": {"type": "email", "address": "ops@cca.example"},
        "match": {"kinds": ["caiso.eea"], "min_severity": "emergency"}},
}


# The 7th notification decide publishes comes from a record it is handling (not a tick).
CRASH_AFTER = 7


class Crash(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs."""


class CrashingBus:
    """Decide's bus, which dies right after its Nth notification reaches the broker."""

    def __init__(self, inner: Bus, crash_after: int | None) -> None:
        self.inner, self.left = inner, crash_after
        self.crashed_in: asyncio.Task[Any] | None = None

    async def publish_records(self, topic: str, records: list[Record]) -> None:
        for record in records:
            await self.inner.publish_records(topic, [record])
            if self.left is not None:
                self.left -= 1
                if self.left == 0:
                    self.crashed_in = asyncio.current_task()
                    raise Crash

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Run:
    """One decide process (restartable) over one store, fed revision by revision."""

    def __init__(self, store: Store, make_bus: Callable[[], Awaitable[Bus]], topics: str,
                 crash_after: int | None) -> None:
        self.store, self.make_bus, self.crash_after = store, make_bus, crash_after
        self.clock = ManualClock(T0)
        self.config = DecideConfig(condition_topics=(topics,), notifications_topic=f"{topics}.n",
                                   group=f"{topics}.decide")
        self.crashes = 0
        self.crashed_while_consuming = False
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.bus = await self.make_bus()
        crash = self.crash_after if self.crashes == 0 else None
        self.decider = Decider(self.store, CrashingBus(self.bus, crash),  # type: ignore[arg-type]
                               self.clock, self.config)
        await self.decider.refresh_index(force=True)
        self.stop = asyncio.Event()

        async def handler(message: Message) -> None:
            await self.decider.handle(decode(message))

        self.task = asyncio.create_task(consume(
            self.bus, self.config.condition_topics, self.config.group, handler, self.stop,
            self.clock, dead_letters=f"{self.config.group}.dlq", poll_timeout_s=0.05))

    async def kill(self) -> None:
        self.crashes += 1
        self.crashed_while_consuming = self.decider.bus.crashed_in is self.task  # type: ignore[attr-defined]
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(Crash, asyncio.CancelledError):
            await self.task
        if not isinstance(self.bus, MemoryBus):  # the embedded bus outlives "processes"
            await self.bus.close()
        await self.start()

    async def tick(self) -> None:
        while True:
            try:
                await self.decider.tick()
                return
            except Crash:
                await self.kill()

    async def settled(self, c: Condition) -> bool:
        assert self.task is not None
        if self.task.done():
            exc = self.task.exception()
            assert isinstance(exc, Crash), exc
            await self.kill()
            return False
        async with self.store.connect() as conn:
            got = await condition_store.get(conn, c.id)
            busy = (await conn.execute(sa.select(sa.func.count()).where(
                (decide_items.c.state == "pending")
                & (decide_items.c.due_at <= self.clock.now())))).scalar_one()
        return got is not None and got.revision >= c.revision and busy == 0

    async def feed(self, producer: Bus) -> None:
        await self.start()
        for c in REVISIONS:
            while (wake := await self.decider.next_wakeup(self.clock.now())) is not None \
                    and wake < c.observed_at:
                self.clock.set(max(wake, self.clock.now() + timedelta(seconds=1)))
                await self.tick()
            self.clock.set(max(self.clock.now(), c.observed_at))
            await producer.publish(self.config.condition_topics[0], c.id,
                                   condition_event(c, "/test"))
            await until(lambda c=c: self.settled(c), f"decide to handle {c.id}")
            await self.tick()
        while (wake := await self.decider.next_wakeup(self.clock.now())) is not None \
                and wake <= END:
            self.clock.set(max(wake, self.clock.now() + timedelta(seconds=1)))
            await self.tick()
        self.stop.set()
        assert self.task is not None
        await self.task
        if not isinstance(self.bus, MemoryBus):
            await self.bus.close()


async def read_keys(bus: Bus, topic: str, expected: set[str]) -> Counter[str]:
    sub = bus.subscribe([topic], f"{topic}.reader")
    await sub.start()
    seen: Counter[str] = Counter()
    # A reader's own rebalance may hand a record out twice; count records, not deliveries.
    records: set[tuple[int, int]] = set()
    deadline = asyncio.get_running_loop().time() + 30
    quiet = 0
    while asyncio.get_running_loop().time() < deadline:
        msg = await sub.get(timeout=0.2)
        if msg is None:
            quiet += 1
            if set(seen) >= expected and quiet >= 3:
                break
            continue
        quiet = 0
        if (msg.partition, msg.offset) not in records:
            records.add((msg.partition, msg.offset))
            seen[notification_from_event(msg.event()).key] += 1
        await sub.ack(msg)
    await sub.close()
    return seen


@pytest.mark.parametrize("kind", ["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
async def test_kill_and_restart_gives_the_same_keys(
        kind: str, tmp_path: Path, unique: Callable[[str], str],
        request: pytest.FixtureRequest) -> None:
    memory = MemoryBus()
    settings = request.getfixturevalue("kafka_settings") if kind == "kafka" else None

    async def make_bus() -> Bus:
        if settings is None:
            return memory
        from monitor.bus.kafka import KafkaBus

        b = KafkaBus(settings)
        await b.start()
        return b

    async def one_run(name: str, crash_after: int | None
                      ) -> tuple[set[str], Counter[str], Run, set[str], dict[str, datetime]]:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / name}.db")
        await store.upgrade()
        tenant = await add_tenant(store, "Restart CCA")
        for sub_id, spec in SUBS.items():
            await add_subscription(store, tenant, spec, sub_id=sub_id)
        topic = unique("capmon.test.cond")
        producer = await make_bus()
        await producer.ensure_topics([TopicSpec(topic, 3, 3_600_000, "delete"),
                                      TopicSpec(f"{topic}.n", 3, 3_600_000, "delete")])
        run = Run(store, make_bus, topic, crash_after)
        await run.feed(producer)
        async with store.connect() as conn:
            entries = await ledger.list_entries(conn, limit=10_000)
        sent = {e.key for e in entries if e.state == "pending"}
        due = {e.key: e.next_attempt_at.replace(tzinfo=e.next_attempt_at.tzinfo or UTC)
               for e in entries if e.next_attempt_at is not None}
        published = await read_keys(producer, f"{topic}.n",
                                    sent if crash_after is None else set())
        if producer is not memory:
            await producer.close()
        await store.close()
        return {e.key for e in entries}, published, run, sent, due

    clean_keys, clean_published, _, sent_clean, _ = await one_run("clean", None)
    crash_keys, crash_published, crashed, sent_crash, due = await one_run("crash", CRASH_AFTER)

    # It died inside the consumer, handling a record it had not acknowledged: the restarted
    # consumer gets that record again.
    assert crashed.crashes == 1 and crashed.crashed_while_consuming
    assert len(clean_keys) > 20
    assert crash_keys == clean_keys
    assert set(clean_published) == sent_clean
    assert all(n == 1 for n in clean_published.values())
    # Nothing published twice, nothing published that the ledger lacks; what the crash kept
    # off the bus (the rest of the batch it died in) is pending and due in the ledger.
    assert all(n == 1 for n in crash_published.values())
    assert set(crash_published) <= crash_keys
    unpublished = sent_crash - set(crash_published)
    assert set(crash_published) | unpublished == set(clean_published)
    assert all(due[k] <= END for k in unpublished)
