"""Tenant isolation, endpoint by endpoint, and key revocation taking effect at once."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import admin, bearer, new_tenant

SPEC = {"name": "desk", "match": {"kinds": ["caiso.eea"], "min_severity": "warning"},
        "channel": {"type": "sms", "phone": "+1 415 555 0100"}}


async def test_tenant_a_cannot_touch_tenant_b(client: TestClient[Any, Any]) -> None:
    _a_id, a = await new_tenant(client, "Tenant A")
    _b_id, b = await new_tenant(client, "Tenant B")
    resp = await client.post("/v1/subscriptions", json=SPEC, headers=bearer(b))
    assert resp.status == 201
    b_sub = await resp.json()
    assert b_sub["channel"]["phone"] == "+14155550100"  # normalized to E.164
    resp = await client.post(f"/v1/subscriptions/{b_sub['id']}/test", headers=bearer(b))
    assert resp.status == 202
    b_key = (await resp.json())["key"]

    # A sees none of B's subscriptions, by list or by id, and cannot change, test or delete.
    listed = await (await client.get("/v1/subscriptions", headers=bearer(a))).json()
    assert listed["items"] == []
    path = f"/v1/subscriptions/{b_sub['id']}"
    for method, url, body in (("GET", path, None), ("PUT", path, SPEC),
                              ("PATCH", path, {"status": "paused"}),
                              ("POST", f"{path}/test", None), ("DELETE", path, None)):
        resp = await client.request(method, url, json=body, headers=bearer(a))
        assert resp.status == 404, (method, url)
        assert resp.content_type == "application/problem+json"
    # ...nor read B's notifications, by list, by filter or by key.
    listed = await (await client.get("/v1/notifications", headers=bearer(a))).json()
    assert listed["items"] == []
    resp = await client.get("/v1/notifications", params={"subscription_id": b_sub["id"]},
                            headers=bearer(a))
    assert (await resp.json())["items"] == []
    assert (await client.get(f"/v1/notifications/{b_key}", headers=bearer(a))).status == 404

    # B still has everything, unchanged.
    got = await (await client.get(path, headers=bearer(b))).json()
    assert got["status"] == "active" and got["name"] == "desk"
    mine = await (await client.get("/v1/notifications", headers=bearer(b))).json()
    assert [e["key"] for e in mine["items"]] == [b_key]
    assert mine["items"][0]["notification"]["test"] is True


async def test_revoked_key_is_refused_at_once(client: TestClient[Any, Any]) -> None:
    tenant_id, key = await new_tenant(client, "Revoked CCA")
    assert (await client.get("/v1/subscriptions", headers=bearer(key))).status == 200
    resp = await client.delete(f"/v1/tenants/{tenant_id}/keys", headers=admin())
    assert (await resp.json())["revoked"] == 1
    resp = await client.get("/v1/subscriptions", headers=bearer(key))
    assert resp.status == 401
    assert (await resp.json())["title"] == "Invalid or revoked API key"


async def test_rotation_revokes_the_old_key(client: TestClient[Any, Any]) -> None:
    tenant_id, old = await new_tenant(client, "Rotating CCA")
    resp = await client.post(f"/v1/tenants/{tenant_id}/keys", headers=admin())
    assert resp.status == 201
    new = (await resp.json())["api_key"]
    assert (await client.get("/v1/subscriptions", headers=bearer(old))).status == 401
    assert (await client.get("/v1/subscriptions", headers=bearer(new))).status == 200


async def test_tenant_endpoints_need_the_admin_key(client: TestClient[Any, Any]) -> None:
    _tid, key = await new_tenant(client, "Not an admin")
    assert (await client.get("/v1/tenants", headers=bearer(key))).status == 401
    assert (await client.post("/v1/tenants", json={"name": "x"}, headers=bearer(key))).status == 401
    assert (await client.post("/v1/tenants", json={"name": "Not an admin"},
                              headers=admin())).status == 409
    listed = await (await client.get("/v1/tenants", headers=admin())).json()
    assert [t["name"] for t in listed["items"]] == ["Not an admin"]
    assert "api_key" not in listed["items"][0]


async def test_secret_is_shown_once(client: TestClient[Any, Any]) -> None:
    _tid, key = await new_tenant(client, "Webhook CCA")
    spec = {**SPEC, "channel": {"type": "webhook", "url": "https://hooks.cca.example/capmon"}}
    created = await (await client.post("/v1/subscriptions", json=spec,
                                       headers=bearer(key))).json()
    assert created["secret"].startswith("whsec_")
    again = await (await client.get(f"/v1/subscriptions/{created['id']}",
                                    headers=bearer(key))).json()
    assert again["secret"] is None
