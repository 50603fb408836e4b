"""A new tenant's admin contact hears capmon's own health, unless the tenant opts out."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from monitor.clock import ManualClock
from monitor.store import Store, endpoints
from tests.api.conftest import admin, bearer, make_app, make_runtime


async def create(client: TestClient[Any, Any], **body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/tenants", json=body, headers=admin())
    assert resp.status == 201, await resp.text()
    out: dict[str, Any] = await resp.json()
    return out


async def test_the_admin_contact_is_subscribed_to_source_health(
        client: TestClient[Any, Any], store: Store, clock: ManualClock) -> None:
    cpa = await create(client, name="CPA", admin_contact="ops@CPA.example")
    health = cpa["health_subscription"]
    assert health["detail"] == ("ops@cpa.example is told by email when capmon cannot see a "
                                "source and when it sees it again")
    subs = (await (await client.get("/v1/subscriptions",
                                    headers=bearer(cpa["api_key"]))).json())["items"]
    [sub] = subs
    assert sub["id"] == health["id"] and sub["name"] == "capmon health (admin contact)"
    assert sub["match"]["kinds"] == ["source.health"] and sub["status"] == "active"
    assert sub["channel"] == {"type": "email", "address": "ops@cpa.example"}
    assert "ended" in sub["transitions"] and "issued" in sub["transitions"]

    out = await create(client, name="DCE", admin_contact="ops@dce.example",
                       health_alerts=False)
    assert out["health_subscription"] == {
        "id": None, "detail": "the tenant opted out (health_alerts: false)"}
    none = await create(client, name="SJCE")
    assert none["health_subscription"]["id"] is None
    assert none["health_subscription"]["detail"].startswith("no admin_contact")
    # A recipient who unsubscribed once is not subscribed again by a new tenant.
    async with store.begin() as conn:
        await endpoints.record_opt_out(conn, "email", "gone@cca.example", "test", clock.now())
    gone = await create(client, name="Gone", admin_contact="gone@cca.example")
    assert gone["health_subscription"]["id"] is None
    assert gone["health_subscription"]["detail"].startswith("gone@cca.example is not subscribed")


async def test_without_email_the_tenant_is_created_and_told_why_not(
        store: Store, clock: ManualClock, aiohttp_client: Any) -> None:
    rt = make_runtime(store, clock, channels=False)
    await rt.bus.start()
    client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    try:
        out = await create(client, name="CPA", admin_contact="ops@cpa.example")
        assert out["health_subscription"]["id"] is None
        assert out["health_subscription"]["detail"] == (
            "ops@cpa.example is not subscribed: the email channel is not configured: set "
            "CAPMON_API_LINK_SECRET (it signs the one-click unsubscribe link every email "
            "carries; keep it stable) and CAPMON_SMTP_HOST/_PORT/_SENDER for your mail relay")
    finally:
        await rt.bus.close()
