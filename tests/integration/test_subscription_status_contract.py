"""Deliver and decide share the subscriptions table: a status deliver sets must load everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.store import Store, endpoints, tenants
from monitor.store import subscriptions as sub_store
from monitor.subscriptions import SubscriptionSpec

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


async def test_an_endpoint_disabled_by_deliver_still_loads_with_its_reason(store: Store) -> None:
    spec = SubscriptionSpec.model_validate({
        "name": "CPA phone", "match": {"kinds": ["caiso.eea"]},
        "channel": {"type": "sms", "phone": "+12135550142"}})
    async with store.begin() as conn:
        tenant, _ = await tenants.create_tenant(conn, "CPA", None, T0)
        sub, _ = await sub_store.create(conn, tenant.id, spec, T0)
        assert await endpoints.set_status(conn, sub.id, endpoints.DISABLED,
                                          "invalid_contact: Twilio 21211", T0)
    async with store.connect() as conn:
        loaded = await sub_store.get(conn, sub.id, tenant_id=tenant.id)
        listed = await sub_store.list_for(conn, tenant.id)
    assert loaded is not None and loaded.status == "disabled"
    assert loaded.status_reason == "invalid_contact: Twilio 21211"
    assert [s.id for s in listed] == [sub.id]
    async with store.begin() as conn:  # the tenant fixes the number and re-enables it
        assert await sub_store.set_status(conn, sub.id, "active", T0, tenant_id=tenant.id)
    async with store.connect() as conn:
        again = await sub_store.get(conn, sub.id)
    assert again is not None and again.status == "active"
