"""The `decide` role as `capmon decide` runs it: records in from the condition topic,
notifications out, the ticker sending the all-clear when the window ends, a clean stop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from consumers.decide.decider import run
from monitor.attributes import NoticeAttributes
from monitor.bus import MemoryBus
from monitor.bus.base import Consumer
from monitor.clock import ManualClock
from monitor.config import AdminSettings, Settings
from monitor.envelope import condition_event
from monitor.events import Condition, Kind, Severity, Status, revision_at
from monitor.notifications import Notification, notification_from_event
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.topics import CAISO, NOTIFICATIONS, TOPIC_SPECS
from tests.decide.conftest import add_subscription, add_tenant


async def next_notification(sub: Consumer) -> Notification:
    msg = await asyncio.wait_for(sub.get(), timeout=10)
    assert msg is not None
    await sub.ack(msg)
    return notification_from_event(msg.event())


async def test_role_end_to_end(store: Store) -> None:
    tenant = await add_tenant(store, "Role CCA")
    sub_id = await add_subscription(store, tenant, {
        "name": "desk", "channel": {"type": "sms", "phone": "+14155550100"},
        "match": {"kinds": ["caiso.eea"], "min_severity": "critical"}})
    issued = datetime(2022, 9, 7, 0, 26, tzinfo=UTC)  # 17:26 PDT
    clock = ManualClock(issued)
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    rt = Runtime(settings=Settings(admin=AdminSettings(key=SecretStr("x" * 20))), clock=clock,
                 bus=bus, store=store)
    reader = bus.subscribe([NOTIFICATIONS], "reader")
    await reader.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run(rt, stop))

    eea3 = Condition(
        id="caiso.notice:202202696", kind=Kind.CAISO_EEA, severity=Severity.CRITICAL,
        status=Status.ACTIVE, regions=("CAISO Grid",),
        window={"start": issued - timedelta(minutes=9), "end": issued + timedelta(minutes=154)},
        attributes=NoticeAttributes(notice_no="202202696", level="3"),
        revision=revision_at(issued), observed_at=issued)
    await bus.publish(CAISO, eea3.id, condition_event(eea3, "/test"))
    await bus.publish(CAISO, "garbage", condition_event(eea3, "/test").__class__(
        attributes={"id": "x", "source": "/t", "type": "capmon.condition.caiso.eea.v1"},
        data={"not": "a condition"}))
    first = await next_notification(reader)
    assert (first.subscription_id, first.items[0].transition.value) == (sub_id, "issued")
    assert first.summary.startswith("CAISO EEA 3 issued")

    clock.set(eea3.window.end)  # 20:00 PDT: the ticker notices the window is over
    second = await next_notification(reader)
    assert second.items[0].transition.value == "ended"
    assert second.decided_at == eea3.window.end

    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert await reader.get(timeout=0.05) is None
    await bus.close()
