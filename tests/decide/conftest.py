"""Helpers for decide tests: tenants and subscriptions written straight to the store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.store import Store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec

T0 = datetime(2022, 8, 29, 0, 0, tzinfo=UTC)


async def add_tenant(store: Store, name: str) -> str:
    async with store.begin() as conn:
        tenant, _key = await tenant_store.create_tenant(conn, name, None, T0)
    return tenant.id


async def add_subscription(store: Store, tenant_id: str, spec: dict[str, Any],
                           sub_id: str | None = None) -> str:
    async with store.begin() as conn:
        sub, _secret = await sub_store.create(
            conn, tenant_id, SubscriptionSpec.model_validate(spec), T0, sub_id=sub_id)
    return sub.id
