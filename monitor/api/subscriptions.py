"""`/v1/subscriptions`: CRUD scoped to the caller's tenant, and `/test`.

A recipient's opt-out binds the tenant: an `unsubscribed` subscription (SMS STOP, email
one-click unsubscribe, a carrier's opt-out, or the tenant's own unsubscribe) cannot be moved to
any other status through PUT or PATCH; only the recipient undoes it (SMS START). A `disabled`
one (deliver gave up on the endpoint) may be set active again by the tenant once the endpoint
is fixed. A PUT without `status` keeps the current status and its reason.

Every query filters on the tenant of the API key, so another tenant's subscription is simply
not found (404, never 403: ids are not confirmed to outsiders). Webhook URLs pass the SSRF
guard before anything is stored. The webhook secret is returned once, at creation (or when a
subscription becomes a webhook).

The operations behind the handlers (`create_subscription`, `owned`, `replace_subscription`,
`change_status`, `delete_subscription`, `rotate_webhook_secret`, `send_test`) are shared with
the tenant portal (monitor.api.portal), so a form is validated, refused and answered as the
API would.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor import ledger
from monitor.api.auth import require_tenant
from monitor.api.channel_schema import channel_schemas
from monitor.api.common import (
    PageQuery,
    lookup_of,
    next_offset,
    now_of,
    parse_query,
    path_id,
    path_parameter,
    query_parameters,
)
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem, parse_body
from monitor.attributes import SourceHealthAttributes
from monitor.channels import unconfigured
from monitor.events import Condition, Kind, Severity, Status
from monitor.netguard import UnsafeUrlError, check_url
from monitor.notifications import (
    Notification,
    NotificationItem,
    Transition,
    notification_key,
    notification_record,
)
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store
from monitor.subscriptions import (
    SmsTarget,
    StatusPatch,
    Subscription,
    SubscriptionSpec,
    SubStatus,
    WebhookTarget,
)
from monitor.topics import NOTIFICATIONS

routes = web.RouteTableDef()


class SubscriptionQuery(PageQuery):
    status: SubStatus | None = None


class SubscriptionPage(BaseModel):
    items: list[Subscription]
    limit: int
    offset: int
    next_offset: int | None


class SecretRotation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    overlap_s: int = Field(default=86_400, ge=0, le=7 * 86_400,
                           description="how long the current secret stays valid alongside "
                                       "the new one (deliveries carry both signatures)")


class RotatedSecret(BaseModel):
    id: str
    secret: str = Field(description="the new whsec_ secret, shown this once")
    previous_secret_expires_at: datetime


class TestQueued(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(description="the test notification's key (see /v1/notifications)")
    status: Literal["queued"] = "queued"


async def _check_opt_out(conn: AsyncConnection, spec: SubscriptionSpec) -> None:
    """A recipient who opted out is not subscribed again by a tenant, under any subscription."""
    refusal = await endpoint_store.opt_out_refusal(conn, spec.channel.type, spec.target())
    if refusal is not None:
        raise Problem(409, "Recipient opted out", refusal)


async def check_channel(request: web.Request, spec: SubscriptionSpec) -> None:
    why = unconfigured(request.app[RUNTIME].settings, spec.channel.type)
    if why is not None:
        # Accepted, it would never be sent: every notification would retry forever.
        raise Problem(422, "Channel not configured", why,
                      [{"loc": ["channel", "type"], "msg": why, "reason": "not_configured"}])
    if isinstance(spec.channel, WebhookTarget):
        settings = request.app[RUNTIME].settings.webhook
        try:
            await check_url(spec.channel.url, settings, lookup_of(request))
        except UnsafeUrlError as exc:
            raise Problem(422, "Webhook URL refused", str(exc),
                          [{"loc": ["channel", "url"], "msg": str(exc),
                            "reason": exc.reason}]) from None


async def create_subscription(request: web.Request, tenant_id: str, spec: SubscriptionSpec,
                              ) -> tuple[sub_store.StoredSubscription, str | None]:
    """Check and store a new subscription; returns it and its webhook secret (shown once)."""
    await check_channel(request, spec)
    async with request.app[RUNTIME].store.begin() as conn:
        await _check_opt_out(conn, spec)
        return await sub_store.create(conn, tenant_id, spec, now_of(request))


@routes.post("/v1/subscriptions")
async def create(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    spec = await parse_body(request, SubscriptionSpec)
    sub, secret = await create_subscription(request, tenant.id, spec)
    return web.json_response(sub.public(secret).model_dump(mode="json"), status=201)


@routes.get("/v1/subscriptions")
async def list_subscriptions(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    q = parse_query(request, SubscriptionQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        subs = await sub_store.list_for(conn, tenant.id, status=q.status, limit=q.limit,
                                        offset=q.offset)
    page = SubscriptionPage(items=[s.public() for s in subs], limit=q.limit, offset=q.offset,
                            next_offset=next_offset(q, len(subs)))
    return web.json_response(page.model_dump(mode="json"))


async def owned(request: web.Request, tenant_id: str, sub_id: str,
                ) -> sub_store.StoredSubscription:
    """The tenant's subscription with this id; another tenant's is not found (404)."""
    async with request.app[RUNTIME].store.connect() as conn:
        sub = await sub_store.get(conn, sub_id, tenant_id)
    if sub is None:
        raise Problem(404, "No such subscription")
    return sub


async def _own(request: web.Request) -> sub_store.StoredSubscription:
    tenant = await require_tenant(request)
    return await owned(request, tenant.id, path_id(request))


@routes.get("/v1/subscriptions/{id}")
async def get_one(request: web.Request) -> web.Response:
    sub = await _own(request)
    return web.json_response(sub.public().model_dump(mode="json"))


TENANT_REASON = "set by tenant"


def check_transition(sub: sub_store.StoredSubscription, status: str) -> None:
    """409 unless the tenant may move `sub` to `status` (see the module docstring)."""
    if status == sub.status or sub.status != "unsubscribed":
        return
    if isinstance(sub.spec.channel, SmsTarget):
        how = "the recipient must opt in again by texting START to the sending number"
    else:
        how = ("only the recipient can opt in again; a new subscription needs the "
               "recipient's fresh consent")
    raise Problem(409, "Recipient opted out",
                  f"this subscription is unsubscribed ({sub.status_reason or 'no reason'}); "
                  f"{how}")


def _reason(status: str) -> str | None:
    return None if status == "active" else TENANT_REASON


async def _apply_status(conn: AsyncConnection, sub: sub_store.StoredSubscription,
                        status: str, now: datetime) -> None:
    """Write a tenant's status change, only if the status is still what was checked."""
    if not await sub_store.set_status(conn, sub.id, status, now, reason=_reason(status),
                                      tenant_id=sub.tenant_id, only_from=sub.status):
        raise _changed_meanwhile()
    if sub.status == "disabled" and status == "active":
        await endpoint_store.reset_failures(conn, sub.id)


def _changed_meanwhile() -> Problem:
    return Problem(409, "Subscription changed meanwhile",
                   "its status changed while this request ran (e.g. the recipient opted "
                   "out); read it again and retry")


async def replace_subscription(request: web.Request, sub: sub_store.StoredSubscription,
                               spec: SubscriptionSpec,
                               ) -> tuple[sub_store.StoredSubscription, str | None]:
    """PUT's semantics: the document replaced; the status changed only if `spec` names one.
    Returns the subscription and, if it just became a webhook, its new secret."""
    await check_channel(request, spec)
    # A PUT that names no status keeps the current one, and its reason.
    status = spec.status if "status" in spec.model_fields_set else None
    if status == sub.status:
        status = None
    if status is not None:
        check_transition(sub, status)
    async with request.app[RUNTIME].store.begin() as conn:
        if spec.target() != sub.spec.target():
            await _check_opt_out(conn, spec)
        result = await sub_store.replace(conn, sub.id, sub.tenant_id, spec, now_of(request),
                                         status=status, reason=_reason(status or "active"),
                                         only_from=sub.status)
        if result is not None and sub.status == "disabled" and status == "active":
            await endpoint_store.reset_failures(conn, sub.id)
    if result is None:
        raise _changed_meanwhile()
    return result


@routes.put("/v1/subscriptions/{id}")
async def replace(request: web.Request) -> web.Response:
    sub = await _own(request)
    spec = await parse_body(request, SubscriptionSpec)
    updated, secret = await replace_subscription(request, sub, spec)
    return web.json_response(updated.public(secret).model_dump(mode="json"))


async def change_status(request: web.Request, sub: sub_store.StoredSubscription,
                        status: str) -> sub_store.StoredSubscription:
    """PATCH's semantics: pause, resume or unsubscribe under the opt-out rules."""
    check_transition(sub, status)
    async with request.app[RUNTIME].store.begin() as conn:
        # Setting the status it already has changes nothing (not even the reason, which
        # says who opted out).
        if status != sub.status:
            await _apply_status(conn, sub, status, now_of(request))
        fresh = await sub_store.get(conn, sub.id, sub.tenant_id)
    if fresh is None:
        raise Problem(404, "No such subscription")
    return fresh


@routes.patch("/v1/subscriptions/{id}")
async def patch_status(request: web.Request) -> web.Response:
    sub = await _own(request)
    patch = await parse_body(request, StatusPatch)
    fresh = await change_status(request, sub, patch.status)
    return web.json_response(fresh.public().model_dump(mode="json"))


async def delete_subscription(request: web.Request, sub: sub_store.StoredSubscription) -> None:
    async with request.app[RUNTIME].store.begin() as conn:
        await sub_store.delete(conn, sub.id, sub.tenant_id)


@routes.delete("/v1/subscriptions/{id}")
async def delete(request: web.Request) -> web.Response:
    await delete_subscription(request, await _own(request))
    return web.Response(status=204)


def _webhook_only(sub: sub_store.StoredSubscription) -> None:
    if not isinstance(sub.spec.channel, WebhookTarget):
        raise Problem(409, "Not a webhook subscription",
                      f"only webhooks have a signing secret; this one is {sub.spec.channel.type}")


async def rotate_webhook_secret(request: web.Request, sub: sub_store.StoredSubscription,
                                rotation: SecretRotation) -> RotatedSecret:
    """A new signing secret for a webhook; the old one keeps signing for `overlap_s`."""
    _webhook_only(sub)
    async with request.app[RUNTIME].store.begin() as conn:
        rotated = await sub_store.rotate_secret(conn, sub.id, sub.tenant_id, now_of(request),
                                                timedelta(seconds=rotation.overlap_s))
    if rotated is None:
        raise Problem(404, "Not found", "no such webhook subscription")
    secret, until = rotated
    return RotatedSecret(id=sub.id, secret=secret, previous_secret_expires_at=until)


@routes.post("/v1/subscriptions/{id}/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    sub = await _own(request)
    _webhook_only(sub)  # before the body is looked at
    body = (await parse_body(request, SecretRotation) if request.body_exists
            else SecretRotation())
    rotated = await rotate_webhook_secret(request, sub, body)
    return web.json_response(rotated.model_dump(mode="json"))


async def send_test(request: web.Request, sub: sub_store.StoredSubscription) -> TestQueued:
    """Queue a test notification: admitted to the ledger like any other, then published to
    deliver (a lost record is sent by deliver's scheduler, which reads the ledger)."""
    if sub.status != "active":
        # deliver suppresses anything for an inactive subscription: a 202 would be a lie.
        raise Problem(409, f"Subscription is {sub.status}",
                      f"a test is sent only to an active subscription; this one is "
                      f"{sub.status} ({sub.status_reason or 'no reason'})")
    rt = request.app[RUNTIME]
    why = unconfigured(rt.settings, sub.spec.channel.type)
    if why is not None:  # made before its channel's settings were removed: it cannot be sent
        raise Problem(409, "Channel not configured", why)
    n = test_notification(sub, now_of(request))
    async with rt.store.begin() as conn:
        await ledger.admit(conn, [n], n.decided_at)
    await rt.bus.publish_records(NOTIFICATIONS, [notification_record(n, source="/capmon/api")])
    return TestQueued(key=n.key)


@routes.post("/v1/subscriptions/{id}/test")
async def queue_test(request: web.Request) -> web.Response:
    queued = await send_test(request, await _own(request))
    return web.json_response(queued.model_dump(), status=202)


def test_notification(sub: sub_store.StoredSubscription, now: datetime) -> Notification:
    condition = Condition(
        id=f"capmon.test:{sub.id}", kind=Kind.SOURCE_HEALTH, severity=Severity.INFO,
        status=Status.ACTIVE, attributes=SourceHealthAttributes(source="capmon", reason="test"),
        revision=0, observed_at=now)
    facts = {"requested_at": now.isoformat(), "nonce": uuid.uuid4().hex}
    item = NotificationItem(transition=Transition.TEST, condition=condition, facts=facts)
    return Notification(
        key=notification_key(sub.id, condition.id, Transition.TEST, facts),
        tenant_id=sub.tenant_id, subscription_id=sub.id, subscription_name=sub.spec.name,
        channel=sub.spec.notification_channel(), decided_at=now, severity=Severity.INFO,
        items=(item,), summary=f"capmon test notification for {sub.spec.name}"[:160],
        test=True)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    sid = [path_parameter("id", "subscription id")]
    tags = ("subscriptions",)
    spec.operation("POST", "/v1/subscriptions", summary="Create a subscription", tags=tags,
                   request=SubscriptionSpec, responses={201: Subscription}, problems=(409,))
    spec.replace_property(SubscriptionSpec, "channel",
                          channel_schemas(app[RUNTIME].settings))
    spec.operation("GET", "/v1/subscriptions", summary="List this tenant's subscriptions",
                   tags=tags, responses={200: SubscriptionPage},
                   parameters=query_parameters(SubscriptionQuery))
    spec.operation("GET", "/v1/subscriptions/{id}", summary="One subscription", tags=tags,
                   parameters=sid, responses={200: Subscription})
    spec.operation("PUT", "/v1/subscriptions/{id}", summary="Replace a subscription",
                   tags=tags, parameters=sid, request=SubscriptionSpec,
                   responses={200: Subscription}, problems=(409,))
    spec.operation("PATCH", "/v1/subscriptions/{id}", summary="Pause, resume or unsubscribe",
                   tags=tags, parameters=sid, request=StatusPatch,
                   responses={200: Subscription}, problems=(409,))
    spec.operation("DELETE", "/v1/subscriptions/{id}", summary="Delete a subscription",
                   tags=tags, parameters=sid, responses={204: None})
    spec.operation("POST", "/v1/subscriptions/{id}/rotate-secret",
                   summary="Rotate a webhook's signing secret (both valid during the overlap)",
                   tags=tags, parameters=sid, request=SecretRotation,
                   responses={200: RotatedSecret}, problems=(409,))
    spec.operation("POST", "/v1/subscriptions/{id}/test", summary="Queue a test notification",
                   tags=tags, parameters=sid, responses={202: TestQueued}, problems=(409,))
