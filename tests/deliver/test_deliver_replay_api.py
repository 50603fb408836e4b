"""`POST /v1/notifications/{key}/replay`: tenant-scoped, refuses what can't be replayed, and
the deliver scheduler sends a replayed key again under the same webhook-id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from capmon.api import api_app
from monitor import ledger
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.subscriptions import set_status
from tests import ledger_states
from tests.deliver.conftest import make_deliverer, webhook_notifier
from tests.deliver.helpers import add_subscription, add_tenant, new_secret, notification
from tests.deliver.receivers import WebhookReceiver


@pytest.fixture
async def api(store: Store, memory_bus: MemoryBus, wall_clock: ManualClock
              ) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    rt = Runtime(settings=Settings(), clock=wall_clock, bus=memory_bus, store=store)
    async with TestClient(TestServer(api_app(rt))) as client:
        yield client


async def test_replay_of_a_dead_notification_is_sent_again(
        store: Store, memory_bus: MemoryBus, wall_clock: ManualClock,
        receiver: WebhookReceiver, api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, key = await add_tenant(store, wall_clock.now())
    secret = new_secret()
    url = receiver.url("/gone", secret)
    sub_id = await add_subscription(store, tenant_id, "webhook", url, wall_clock.now(),
                                    secret=secret)
    d = await make_deliverer(store, memory_bus, wall_clock,
                             {"webhook": webhook_notifier(wall_clock)})
    n = notification(tenant_id, sub_id, "webhook", url)
    await d.submit(n)
    auth = {"Authorization": f"Bearer {key}"}

    # The 410 disabled the endpoint: replay says so instead of queueing a doomed send.
    r = await api.post(f"/v1/notifications/{n.key}/replay", headers=auth)
    assert r.status == 409 and "disabled" in (await r.json())["detail"]

    async with store.begin() as conn:
        await set_status(conn, sub_id, "active", wall_clock.now())
    receiver.mode["/gone"] = 200
    r = await api.post(f"/v1/notifications/{n.key}/replay", headers=auth)
    assert r.status == 202
    body = await r.json()
    assert body["previous_state"] == "dead" and body["state"] == "pending"
    # A second replay while it is queued is refused.
    r = await api.post(f"/v1/notifications/{n.key}/replay", headers=auth)
    assert r.status == 409

    assert await d.run_due() == 1
    async with store.connect() as conn:
        e = await ledger.get(conn, n.key)
    assert e is not None and (e.state, e.attempt_count) == ("delivered", 2)
    assert [x.webhook_id for x in receiver.on("/gone")] == [n.key, n.key]
    assert all(x.verified == [True] for x in receiver.on("/gone"))


async def test_replay_is_tenant_scoped_and_authenticated(
        store: Store, wall_clock: ManualClock, api: TestClient) -> None:  # type: ignore[type-arg]
    owner, _ = await add_tenant(store, wall_clock.now())
    _, other_key = await add_tenant(store, wall_clock.now())
    sub_id = await add_subscription(store, owner, "webhook", "https://cca.example/h",
                                    wall_clock.now(), secret=new_secret())
    n = notification(owner, sub_id, "webhook", "https://cca.example/h")
    async with store.begin() as conn:
        await ledger_states.put(conn, n, "dead", wall_clock.now())
    r = await api.post(f"/v1/notifications/{n.key}/replay")
    assert r.status == 401
    r = await api.post(f"/v1/notifications/{n.key}/replay",
                       headers={"Authorization": f"Bearer {other_key}"})
    assert r.status == 404
    async with store.connect() as conn:
        e = await ledger.get(conn, n.key)
    assert e is not None and e.state == "dead"


async def test_replay_refuses_suppressed(store: Store, wall_clock: ManualClock,
                                         api: TestClient) -> None:  # type: ignore[type-arg]
    tenant_id, key = await add_tenant(store, wall_clock.now())
    sub_id = await add_subscription(store, tenant_id, "sms", "+16265550123", wall_clock.now())
    n = notification(tenant_id, sub_id, "sms", "+16265550123")
    async with store.begin() as conn:
        await ledger_states.put(conn, n, "suppressed", wall_clock.now(), "quiet hours")
    r = await api.post(f"/v1/notifications/{n.key}/replay",
                       headers={"Authorization": f"Bearer {key}"})
    assert r.status == 409 and (await r.json())["detail"] == "quiet hours"


async def test_openapi_describes_the_deliver_endpoints(api: TestClient) -> None:  # type: ignore[type-arg]
    doc = await (await api.get("/openapi.json")).json()
    for path in ("/v1/notifications/{key}/replay", "/v1/twilio/status", "/v1/twilio/inbound",
                 "/v1/unsubscribe/{token}", "/n/{prefix}"):
        assert path in doc["paths"]
