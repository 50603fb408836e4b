"""A subscription to a channel capmon cannot send on is refused, saying what to configure,
instead of being accepted and retried forever."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from monitor.clock import ManualClock
from monitor.store import Store
from tests.api.conftest import bearer, make_app, make_runtime, new_tenant


async def test_email_and_sms_need_their_settings(store: Store, clock: ManualClock,
                                                 aiohttp_client: Any) -> None:
    rt = make_runtime(store, clock, channels=False)
    await rt.bus.start()
    client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    try:
        _tid, key = await new_tenant(client, "CPA")
        email = {"name": "inbox", "channel": {"type": "email", "address": "desk@cpa.example"}}
        resp = await client.post("/v1/subscriptions", json=email, headers=bearer(key))
        assert resp.status == 422
        body = await resp.json()
        assert body["title"] == "Channel not configured"
        assert body["detail"].startswith("the email channel is not configured: set "
                                         "CAPMON_API_LINK_SECRET")
        assert body["errors"][0]["loc"] == ["channel", "type"]
        sms = {"name": "phone", "channel": {"type": "sms", "phone": "+14155550100"}}
        resp = await client.post("/v1/subscriptions", json=sms, headers=bearer(key))
        assert resp.status == 422
        assert (await resp.json())["detail"] == (
            "the SMS channel is not configured: set CAPMON_TWILIO_ACCOUNT_SID, "
            "CAPMON_TWILIO_AUTH_TOKEN, CAPMON_TWILIO_MESSAGING_SERVICE_SID or "
            "CAPMON_TWILIO_FROM_NUMBER")
        # Webhooks need nothing but a URL; a PUT to email is refused like a POST.
        hook = {"name": "hook", "channel": {"type": "webhook",
                                            "url": "https://hooks.cca.example/capmon"}}
        resp = await client.post("/v1/subscriptions", json=hook, headers=bearer(key))
        assert resp.status == 201
        sub = await resp.json()
        resp = await client.put(f"/v1/subscriptions/{sub['id']}", json=email,
                                headers=bearer(key))
        assert resp.status == 422
        listed = await (await client.get("/v1/subscriptions", headers=bearer(key))).json()
        assert [s["channel"]["type"] for s in listed["items"]] == ["webhook"]
    finally:
        await rt.bus.close()


async def test_a_test_of_a_subscription_whose_channel_settings_went_away_is_refused(
        store: Store, clock: ManualClock, aiohttp_client: Any) -> None:
    configured = make_runtime(store, clock)
    await configured.bus.start()
    client: TestClient[Any, Any] = await aiohttp_client(make_app(configured))
    _tid, key = await new_tenant(client, "DCE")
    email = {"name": "inbox", "channel": {"type": "email", "address": "ops@dce.example"}}
    resp = await client.post("/v1/subscriptions", json=email, headers=bearer(key))
    assert resp.status == 201
    sub = await resp.json()
    await configured.bus.close()
    # The same store, restarted without api.link_secret.
    bare = make_runtime(store, clock, channels=False)
    await bare.bus.start()
    try:
        client = await aiohttp_client(make_app(bare))
        resp = await client.post(f"/v1/subscriptions/{sub['id']}/test", headers=bearer(key))
        assert resp.status == 409
        body = await resp.json()
        assert body["title"] == "Channel not configured"
        assert "CAPMON_API_LINK_SECRET" in body["detail"]
    finally:
        await bare.bus.close()
