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
        assert await sub_store.set_status(conn, sub.id, sub_store.DISABLED, T0,
                                          reason="invalid_contact: Twilio 21211")
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


async def test_one_writer_of_the_status_keeps_a_reason_and_tells_the_index(store: Store) -> None:
    """Whoever changes a status (tenant, recipient, deliver) goes through `set_status`: an
    index in the same process hears of it at once, and setting the status a subscription
    already has changes nothing, not even who set it."""
    spec = SubscriptionSpec.model_validate({
        "name": "desk inbox", "match": {"kinds": ["caiso.eea"]},
        "channel": {"type": "email", "address": "desk@cpa.example"}})
    async with store.begin() as conn:
        tenant, _ = await tenants.create_tenant(conn, "CPA mail", None, T0)
        sub, _ = await sub_store.create(conn, tenant.id, spec, T0)
        before = sub_store.WATCH.local_changes
        assert await endpoints.opt_out(conn, sub.id, "unsubscribe: one-click", T0)
        assert sub_store.WATCH.local_changes == before + 1
        assert not await sub_store.set_status(conn, sub.id, sub_store.UNSUBSCRIBED, T0,
                                              reason="set by tenant", tenant_id=tenant.id)
        assert sub_store.WATCH.local_changes == before + 1
        assert await endpoints.opted_out(conn, "email", "Desk@cpa.example") is not None
    async with store.connect() as conn:
        loaded = await sub_store.get(conn, sub.id)
    assert loaded is not None and loaded.status_reason == "unsubscribe: one-click"
