"""PostgreSQL going away under decide (refused connections, live ones cut, for longer than
the ticker's longest sleep) loses nothing: revisions are retried until the store is back,
never acknowledged and dropped, and the ticker lives on to send the time-driven all-clear.
The store's boundary turns the driver's bare `OSError`s into retriable `StoreError`s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from consumers.decide.decider import Decider, run
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.bus.dead_letters import list_dead_letters
from monitor.clock import ManualClock
from monitor.config import AdminSettings, Settings
from monitor.envelope import condition_event
from monitor.errors import StoreError
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.metrics import BUS_RETRIES
from monitor.notifications import notification_from_event
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.topics import CAISO, CONDITIONS_DLQ, NOTIFICATIONS, TOPIC_SPECS
from tests.decide.conftest import add_subscription, add_tenant
from tests.faults.proxy import FlakyProxy

ISSUED = datetime(2022, 9, 7, 0, 26, tzinfo=UTC)  # 17:26 PDT

pytestmark = pytest.mark.postgres


def eea(n: int) -> Condition:
    return Condition(
        id=f"caiso.notice:20220269{n}", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE, regions=("CAISO Grid",),
        window={"start": ISSUED - timedelta(minutes=9), "end": ISSUED + timedelta(minutes=30)},
        attributes=NoticeAttributes(notice_no=f"20220269{n}", level="3"),
        revision=revision_at(ISSUED), observed_at=ISSUED)


async def proxied_store(pg_url: str) -> tuple[Store, FlakyProxy]:
    url = make_url(pg_url)
    proxy = FlakyProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    store = Store(url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False))
    await store.upgrade()
    return store, proxy


async def test_a_refused_connection_is_a_retriable_store_error(pg_url: str) -> None:
    store, proxy = await proxied_store(pg_url)
    try:
        await proxy.down()
        decider = Decider(store, MemoryBus(), ManualClock(ISSUED))
        for work in (decider.refresh_index(force=True), decider.tick(), decider.handle(eea(1))):
            with pytest.raises(StoreError) as caught:
                await work
            assert caught.value.retriable and caught.value.reason == "unavailable"
    finally:
        await store.close()


async def test_decide_loses_nothing_while_postgres_is_away(pg_url: str) -> None:
    store, proxy = await proxied_store(pg_url)
    tenant = await add_tenant(store, "Outage CCA")
    sub_id = await add_subscription(store, tenant, {
        "name": "desk", "channel": {"type": "sms", "phone": "+14155550100"},
        "match": {"kinds": ["caiso.eea"], "min_severity": "critical"}})
    clock = ManualClock(ISSUED)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    rt = Runtime(settings=Settings(admin=AdminSettings(key=SecretStr("x" * 20))), clock=clock,
                 bus=bus, store=store)
    reader = bus.subscribe([NOTIFICATIONS], "reader")
    await reader.start()
    stop = asyncio.Event()
    retries = BUS_RETRIES.labels(topic=CAISO, group="capmon-decide")
    retried_before = retries._value.get()
    task = asyncio.create_task(run(rt, stop))
    try:
        await asyncio.sleep(0.2)
        await proxy.down()
        revisions = [eea(n) for n in range(1, 6)]
        await bus.publish_many(CAISO, [(c.id, condition_event(c, "/test")) for c in revisions])
        for _ in range(45):  # 45 s on the clock: past the ticker's 30 s longest sleep
            clock.advance(1)
            await asyncio.sleep(0.05)
        assert retries._value.get() > retried_before, "the consumer met the outage"
        assert await reader.get(timeout=0.05) is None

        await proxy.up()
        issued: dict[str, str] = {}
        for _ in range(300):
            if len(issued) == len(revisions):
                break
            clock.advance(1)
            msg = await reader.get(timeout=0.2)
            if msg is not None:
                await reader.ack(msg)
                n = notification_from_event(msg.event())
                for item in n.items:
                    issued[item.condition.id] = item.transition.value
        assert issued == {c.id: "issued" for c in revisions}
        assert await list_dead_letters(bus, CONDITIONS_DLQ) == []

        # The ticker outlived the outage: the windows' end still gives the all-clears.
        ended: set[str] = set()
        clock.set(revisions[0].window.end)
        while len(ended) < len(revisions):
            msg = await asyncio.wait_for(reader.get(), 20)
            assert msg is not None
            await reader.ack(msg)
            n = notification_from_event(msg.event())
            assert n.subscription_id == sub_id
            ended.update(i.condition.id for i in n.items if i.transition.value == "ended")
        assert rt.tasks.failures == {}, "no task died: the ticker caught the store errors"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await bus.close()
        await store.close()
        await proxy.down()
