"""The heartbeat option through the API: accepted, echoed with its zone, described in OpenAPI."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import bearer, new_tenant

HOOK = {"type": "webhook", "url": "https://hooks.cca.example/capmon"}


async def test_a_subscription_with_a_daily_heartbeat(client: TestClient[Any, Any]) -> None:
    _tid, key = await new_tenant(client, "CPA")
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json={
        "name": "risk system", "match": {"kinds": ["source.health"]}, "channel": HOOK,
        "heartbeat": {"at": "08:00"}})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["heartbeat"] == {"at": "08:00",
                                                "timezone": "America/Los_Angeles"}
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json={
        "name": "bad", "channel": HOOK, "heartbeat": {"at": "8 o'clock"}})
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["loc"] == ["heartbeat", "at"]
    doc = await (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "at" in schemas["Heartbeat"]["properties"]
    spec = schemas["SubscriptionSpec"]["properties"]["heartbeat"]
    assert "Heartbeat" in str(spec)
