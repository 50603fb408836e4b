"""Who may change a subscription's status: a recipient's opt-out binds the tenant.

`unsubscribed` (SMS STOP, email one-click unsubscribe, a carrier opt-out) is undone only by
the recipient; `disabled` (deliver gave up on the endpoint) the tenant may re-enable; a PUT
that names no status keeps the status and its reason; a test goes only to an active one.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from monitor.api.twilio_hooks import STOP_REASON
from monitor.api.unsubscribe import UNSUBSCRIBE_REASON
from monitor.clock import ManualClock
from monitor.store import Store, endpoints
from monitor.store import subscriptions as sub_store
from monitor.store.schema import endpoint_health
from tests.api.conftest import bearer, new_tenant

SMS = {"name": "on-call phone", "match": {"kinds": ["caiso.eea"]},
       "channel": {"type": "sms", "phone": "+14155550100"}}
EMAIL = {"name": "desk inbox", "match": {"kinds": ["caiso.eea"]},
         "channel": {"type": "email", "address": "desk@cpa.example"}}
WEBHOOK = {"name": "scheduling system", "match": {"kinds": ["caiso.eea"]},
           "channel": {"type": "webhook", "url": "https://hooks.cca.example/capmon"}}


async def _subscribe(client: TestClient[Any, Any], spec: dict[str, Any]) -> tuple[str, str]:
    _tid, key = await new_tenant(client, f"CCA {spec['name']}")
    resp = await client.post("/v1/subscriptions", json=spec, headers=bearer(key))
    assert resp.status == 201, await resp.text()
    return key, (await resp.json())["id"]


async def _set(store: Store, clock: ManualClock, sub_id: str, status: str, reason: str) -> None:
    """What SMS STOP, email unsubscribe and deliver do: write the status directly."""
    async with store.begin() as conn:
        if status == "unsubscribed":
            assert await endpoints.opt_out(conn, sub_id, reason, clock.now())
        else:
            assert await sub_store.set_status(conn, sub_id, status, clock.now(), reason=reason)


async def _get(client: TestClient[Any, Any], key: str, sub_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/subscriptions/{sub_id}", headers=bearer(key))
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


@pytest.mark.parametrize(("spec", "reason", "how"), [
    (SMS, STOP_REASON, "texting START"),
    (EMAIL, UNSUBSCRIBE_REASON, "only the recipient"),
    (SMS, "unsubscribed: Twilio 21610", "texting START"),
])
async def test_the_tenant_cannot_undo_a_recipients_opt_out(
        client: TestClient[Any, Any], store: Store, clock: ManualClock,
        spec: dict[str, Any], reason: str, how: str) -> None:
    key, sub_id = await _subscribe(client, spec)
    await _set(store, clock, sub_id, "unsubscribed", reason)
    path = f"/v1/subscriptions/{sub_id}"
    for method, body in (("PATCH", {"status": "active"}), ("PATCH", {"status": "paused"}),
                         ("PUT", {**spec, "status": "active"})):
        resp = await client.request(method, path, json=body, headers=bearer(key))
        assert resp.status == 409, (method, body)
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["title"] == "Recipient opted out"
        assert how in problem["detail"] and reason in problem["detail"]
    got = await _get(client, key, sub_id)
    assert (got["status"], got["status_reason"]) == ("unsubscribed", reason)


async def test_put_without_status_keeps_the_opt_out_and_its_reason(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    key, sub_id = await _subscribe(client, SMS)
    await _set(store, clock, sub_id, "unsubscribed", STOP_REASON)
    renamed = {**SMS, "name": "renamed phone"}
    resp = await client.put(f"/v1/subscriptions/{sub_id}", json=renamed, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["name"], body["status"], body["status_reason"]) == (
        "renamed phone", "unsubscribed", STOP_REASON)
    # Saying "unsubscribed" again changes nothing, least of all who opted out.
    resp = await client.patch(f"/v1/subscriptions/{sub_id}", json={"status": "unsubscribed"},
                              headers=bearer(key))
    assert resp.status == 200
    assert (await resp.json())["status_reason"] == STOP_REASON
    resp = await client.put(f"/v1/subscriptions/{sub_id}", json={**SMS, "status": "unsubscribed"},
                            headers=bearer(key))
    assert resp.status == 200
    assert (await resp.json())["status_reason"] == STOP_REASON


async def test_put_without_status_keeps_a_pause(client: TestClient[Any, Any]) -> None:
    key, sub_id = await _subscribe(client, SMS)
    path = f"/v1/subscriptions/{sub_id}"
    assert (await client.patch(path, json={"status": "paused"}, headers=bearer(key))).status == 200
    body = await (await client.put(path, json=SMS, headers=bearer(key))).json()
    assert (body["status"], body["status_reason"]) == ("paused", "set by tenant")
    body = await (await client.put(path, json={**SMS, "status": "active"},
                                   headers=bearer(key))).json()
    assert (body["status"], body["status_reason"]) == ("active", None)


async def test_the_tenant_may_re_enable_a_disabled_endpoint(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    key, sub_id = await _subscribe(client, WEBHOOK)
    async with store.begin() as conn:
        await endpoints.record_failure(conn, sub_id, clock.now(), "server: 503")
    await _set(store, clock, sub_id, "disabled", "server: failing since 2022-09-04")
    path = f"/v1/subscriptions/{sub_id}"
    body = await (await client.put(path, json=WEBHOOK, headers=bearer(key))).json()
    assert (body["status"], body["status_reason"]) == (
        "disabled", "server: failing since 2022-09-04")

    resp = await client.patch(path, json={"status": "active"}, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["status"], body["status_reason"]) == ("active", None)
    # ...and starts afresh, not one failure away from being disabled again.
    async with store.connect() as conn:
        row = (await conn.execute(sa.select(endpoint_health.c.failing_since,
                                            endpoint_health.c.consecutive_failures)
                                  .where(endpoint_health.c.subscription_id == sub_id))).one()
    assert tuple(row) == (None, 0)


async def test_list_filters_on_every_status(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    key, sub_id = await _subscribe(client, WEBHOOK)
    await _set(store, clock, sub_id, "disabled", "gone: HTTP 410")
    for status, expected in (("disabled", [sub_id]), ("active", []), ("paused", []),
                             ("unsubscribed", [])):
        resp = await client.get("/v1/subscriptions", params={"status": status},
                                headers=bearer(key))
        assert resp.status == 200, (status, await resp.text())
        assert [s["id"] for s in (await resp.json())["items"]] == expected, status
    resp = await client.get("/v1/subscriptions", params={"status": "gone"}, headers=bearer(key))
    assert resp.status == 422


@pytest.mark.parametrize("status", ["paused", "disabled", "unsubscribed"])
async def test_a_test_goes_only_to_an_active_subscription(
        client: TestClient[Any, Any], store: Store, clock: ManualClock, status: str) -> None:
    key, sub_id = await _subscribe(client, SMS)
    await _set(store, clock, sub_id, status, "why not")
    resp = await client.post(f"/v1/subscriptions/{sub_id}/test", headers=bearer(key))
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["title"] == f"Subscription is {status}"
    listed = await (await client.get("/v1/notifications", headers=bearer(key))).json()
    assert listed["items"] == []  # nothing was queued
    await _set(store, clock, sub_id, "active", "")
    assert (await client.post(f"/v1/subscriptions/{sub_id}/test",
                              headers=bearer(key))).status == 202


async def test_unsubscribed_is_final_for_the_tenant_even_its_own(
        client: TestClient[Any, Any]) -> None:
    """The tenant pauses to stop for a while; `unsubscribed` is the recipient's word, and a
    tenant that says it cannot take it back (a STOP arriving after it would be lost)."""
    key, sub_id = await _subscribe(client, EMAIL)
    path = f"/v1/subscriptions/{sub_id}"
    resp = await client.patch(path, json={"status": "unsubscribed"}, headers=bearer(key))
    assert resp.status == 200
    resp = await client.patch(path, json={"status": "active"}, headers=bearer(key))
    assert resp.status == 409
    assert (await _get(client, key, sub_id))["status"] == "unsubscribed"
