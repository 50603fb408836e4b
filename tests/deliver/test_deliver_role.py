"""The `deliver` role as `capmon run` starts it: consume the notifications topic on the
embedded bus, deliver, dead-letter a poison record without blocking, and stop cleanly."""

from __future__ import annotations

import asyncio

from cloudevents.core.v1.event import CloudEvent

from capmon.roles import ROLES
from consumers.deliver.deliverer import run
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import DeliverSettings, Settings, WebhookSettings
from monitor.metrics import BUS_CONSUMED, BUS_DEAD_LETTERS
from monitor.notifications import notification_record
from monitor.runtime import Runtime
from monitor.store import Store
from tests.deliver.helpers import add_subscription, add_tenant, new_secret, notification
from tests.deliver.receivers import WebhookReceiver

TOPIC = "capmon.notifications.v1"


async def test_role_consumes_delivers_dead_letters_poison_and_drains(
        store: Store, memory_bus: MemoryBus, receiver: WebhookReceiver,
        wall_clock: ManualClock) -> None:
    assert ROLES["deliver"] is run
    tenant_id, _ = await add_tenant(store, wall_clock.now())
    secret = new_secret()
    url = receiver.url("/ok", secret)
    sub_id = await add_subscription(store, tenant_id, "webhook", url, wall_clock.now(),
                                    secret=secret)
    ns = [notification(tenant_id, sub_id, "webhook", url, n=i) for i in range(20)]
    poison = CloudEvent(attributes={"id": "x", "source": "/test", "type": "capmon.other.v1",
                                    "datacontenttype": "application/json"}, data={"a": 1})
    await memory_bus.publish(TOPIC, sub_id, poison)
    await memory_bus.publish_records(TOPIC, [notification_record(n) for n in ns])
    # Redelivered duplicates of the first five: the ledger admits each key once.
    await memory_bus.publish_records(TOPIC, [notification_record(n) for n in ns[:5]])
    settings = Settings(webhook=WebhookSettings(allow_hosts=("127.0.0.1",), allow_http=True),
                        deliver=DeliverSettings(group="deliver-role-test"))
    rt = Runtime(settings=settings, clock=wall_clock, bus=memory_bus, store=store)
    poisoned = BUS_DEAD_LETTERS.labels(topic=TOPIC, group="deliver-role-test")._value.get()
    consumed = BUS_CONSUMED.labels(topic=TOPIC, group="deliver-role-test")

    async def all_acknowledged() -> None:
        # A counter has no event to wait on; poll it under the deadline below.
        while consumed._value.get() < 26:  # noqa: ASYNC110  (20 + 5 duplicates + 1 poison)
            await asyncio.sleep(0.01)

    stop = asyncio.Event()
    task = asyncio.create_task(run(rt, stop))
    await asyncio.wait_for(all_acknowledged(), 20)
    stop.set()
    await asyncio.wait_for(task, 20)

    assert sorted(r.webhook_id for r in receiver.received) == sorted(n.key for n in ns)
    dead = BUS_DEAD_LETTERS.labels(topic=TOPIC, group="deliver-role-test")._value.get()
    assert dead == poisoned + 1
    async with store.connect() as conn:
        assert await ledger.count_by_state(conn) == {"delivered": 20}
