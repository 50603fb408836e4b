"""A recipient's opt-out binds the address, not only the subscription it arrived on: after an
SMS STOP or an email one-click unsubscribe no tenant can subscribe that phone or address again
(not by a new subscription, not by pointing another one at it), until the recipient opts in."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from monitor.api.twilio_hooks import STOP_REASON
from monitor.api.unsubscribe import UNSUBSCRIBE_REASON
from monitor.clock import ManualClock
from monitor.store import Store, endpoints
from tests.api.conftest import bearer, new_tenant

PHONE = "+14155550177"
SMS = {"name": "on-call phone", "match": {"kinds": ["caiso.eea"]},
       "channel": {"type": "sms", "phone": PHONE}}
EMAIL = {"name": "desk inbox", "match": {"kinds": ["caiso.eea"]},
         "channel": {"type": "email", "address": "desk@optout.example"}}


async def subscribe(client: TestClient[Any, Any], key: str, spec: dict[str, Any]) -> Any:
    return await client.post("/v1/subscriptions", json=spec, headers=bearer(key))


async def test_a_stop_blocks_every_new_subscription_to_that_phone(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _a, key_a = await new_tenant(client, "CPA")
    _b, key_b = await new_tenant(client, "DCE")
    first = await (await subscribe(client, key_a, SMS)).json()
    async with store.begin() as conn:  # what /v1/twilio/inbound does on STOP
        await endpoints.opt_out(conn, first["id"], STOP_REASON, clock.now())
    # Delete and recreate, or another tenant: refused, with the way back.
    assert (await client.delete(f"/v1/subscriptions/{first['id']}",
                                headers=bearer(key_a))).status == 204
    for key in (key_a, key_b):
        resp = await subscribe(client, key, SMS)
        assert resp.status == 409, await resp.text()
        assert "START" in (await resp.json())["detail"]
    # Pointing an existing subscription at the phone is refused too.
    other = await (await subscribe(client, key_b, {**SMS, "channel": {
        "type": "sms", "phone": "+14155550178"}})).json()
    moved = await client.put(f"/v1/subscriptions/{other['id']}", json=SMS, headers=bearer(key_b))
    assert moved.status == 409
    async with store.begin() as conn:  # what START does
        await endpoints.clear_opt_out(conn, "sms", PHONE)
    assert (await subscribe(client, key_a, SMS)).status == 201


async def test_an_email_unsubscribe_binds_the_address(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _a, key = await new_tenant(client, "CPA mail")
    sub = await (await subscribe(client, key, EMAIL)).json()
    async with store.begin() as conn:  # what the one-click unsubscribe POST does
        await endpoints.opt_out(conn, sub["id"], UNSUBSCRIBE_REASON, clock.now())
    resp = await subscribe(client, key, EMAIL)
    assert resp.status == 409 and "only the recipient" in (await resp.json())["detail"]


async def test_a_tenants_own_unsubscribe_does_not_bind_the_address(
        client: TestClient[Any, Any]) -> None:
    _a, key = await new_tenant(client, "CPA own")
    sub = await (await subscribe(client, key, EMAIL | {"channel": {
        "type": "email", "address": "own@optout.example"}})).json()
    patched = await client.patch(f"/v1/subscriptions/{sub['id']}",
                                 json={"status": "unsubscribed"}, headers=bearer(key))
    assert patched.status == 200
    again = await subscribe(client, key, EMAIL | {"channel": {
        "type": "email", "address": "own@optout.example"}})
    assert again.status == 201
