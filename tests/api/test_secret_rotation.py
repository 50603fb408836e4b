"""Rotating a webhook's signing secret: for the overlap both secrets sign every delivery, so
a receiver can switch without losing one; afterwards only the new one does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook

from consumers.notifiers.webhook import signed_headers
from monitor.clock import ManualClock
from monitor.store import Store, endpoints
from tests.api.conftest import bearer, new_tenant

WEBHOOK = {"name": "scheduling system", "match": {"kinds": ["caiso.eea"]},
           "channel": {"type": "webhook", "url": "https://hooks.cca.example/capmon"}}
SMS = {"name": "phone", "channel": {"type": "sms", "phone": "+14155550100"}}


def verifies(secret: str, secrets: tuple[str, ...], at: datetime) -> bool:
    """Does a delivery signed by deliver with `secrets` verify with the reference library?"""
    body = b'{"specversion": "1.0"}'
    headers = signed_headers(secrets, "k" * 40, int(at.timestamp()), body)
    expected = Webhook(secret).sign("k" * 40, datetime.fromtimestamp(int(at.timestamp()), UTC),
                                    body.decode())
    return expected in headers["webhook-signature"].split(" ")


async def test_both_secrets_sign_during_the_overlap_then_only_the_new(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    _tid, key = await new_tenant(client, "CPA")
    created = await (await client.post("/v1/subscriptions", json=WEBHOOK,
                                       headers=bearer(key))).json()
    old = created["secret"]
    resp = await client.post(f"/v1/subscriptions/{created['id']}/rotate-secret",
                             json={"overlap_s": 3600}, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    rotated = await resp.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old
    assert datetime.fromisoformat(rotated["previous_secret_expires_at"]) == \
        clock.now() + timedelta(hours=1)
    # Shown once: reading the subscription does not give it back.
    shown = await (await client.get(f"/v1/subscriptions/{created['id']}",
                                    headers=bearer(key))).json()
    assert shown.get("secret") is None
    async with store.connect() as conn:
        during = await endpoints.get_endpoint(conn, created["id"], clock.now())
    assert during is not None and during.secrets == (new, old)
    assert verifies(old, during.secrets, clock.now()) and verifies(new, during.secrets,
                                                                   clock.now())
    clock.advance(3601)
    async with store.connect() as conn:
        after = await endpoints.get_endpoint(conn, created["id"], clock.now())
    assert after is not None and after.secrets == (new,)
    assert verifies(new, after.secrets, clock.now())
    assert not verifies(old, after.secrets, clock.now())


async def test_rotation_is_for_webhooks_of_ones_own_tenant(
        client: TestClient[Any, Any]) -> None:
    _a, key_a = await new_tenant(client, "A")
    _b, key_b = await new_tenant(client, "B")
    hook = await (await client.post("/v1/subscriptions", json=WEBHOOK,
                                    headers=bearer(key_a))).json()
    phone = await (await client.post("/v1/subscriptions", json=SMS,
                                     headers=bearer(key_a))).json()
    other = await client.post(f"/v1/subscriptions/{hook['id']}/rotate-secret",
                              headers=bearer(key_b))
    assert other.status == 404
    sms = await client.post(f"/v1/subscriptions/{phone['id']}/rotate-secret",
                            headers=bearer(key_a))
    assert sms.status == 409
    assert sms.headers["Content-Type"].startswith("application/problem+json")
    too_long = await client.post(f"/v1/subscriptions/{hook['id']}/rotate-secret",
                                 json={"overlap_s": 30 * 86_400}, headers=bearer(key_a))
    assert too_long.status == 422
    default = await client.post(f"/v1/subscriptions/{hook['id']}/rotate-secret",
                                headers=bearer(key_a))
    assert default.status == 200
