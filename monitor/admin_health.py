"""A new tenant's admin contact hears capmon's own health unless the tenant opts out.

The API (`POST /v1/tenants`) and the CLI (`capmon tenants add`) subscribe `admin_contact` by
email to `source.health`: "capmon cannot see CAISO notices since 09:47 PT", then "capmon sees
CAISO notices again". It is an ordinary subscription the tenant may pause or delete, and the
email carries one-click unsubscribe. Nothing is subscribed when the email channel is not
configured or the address opted out; the answer says so and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.channels import unconfigured
from monitor.config import Settings
from monitor.events import Kind
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.subscriptions import EmailTarget, Match, SubscriptionSpec

NAME = "capmon health (admin contact)"


@dataclass(frozen=True)
class AdminHealth:
    subscription_id: str | None
    detail: str


def health_spec(address: str) -> SubscriptionSpec:
    return SubscriptionSpec(name=NAME, match=Match(kinds=[Kind.SOURCE_HEALTH]),
                            channel=EmailTarget(type="email", address=address))


async def subscribe_admin(conn: AsyncConnection, settings: Settings, tenant_id: str,
                          address: str | None, now: datetime, *, wanted: bool) -> AdminHealth:
    """Subscribe `address` to capmon's health in the caller's transaction, if it may be."""
    if address is None:
        return AdminHealth(None, "no admin_contact: nobody is told when capmon cannot see "
                                 "its sources")
    if not wanted:
        return AdminHealth(None, "the tenant opted out (health_alerts: false)")
    why = unconfigured(settings, "email")
    if why is None:
        why = await endpoint_store.opt_out_refusal(conn, "email", address)
    if why is not None:
        return AdminHealth(None, f"{address} is not subscribed: {why}")
    sub, _ = await sub_store.create(conn, tenant_id, health_spec(address), now)
    return AdminHealth(sub.id, f"{address} is told by email when capmon cannot see a source "
                               "and when it sees it again")
