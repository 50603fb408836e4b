"""Calendar feeds: `/v1/subscriptions/{id}/calendar` (the tenant's key) makes, shows and
removes a subscription's feed; `GET /v1/calendar/{token}.ics` serves it without a key, because
calendar clients cannot send one. The token is the only secret: 256 random bits, shown once
when made (a rotation makes a new one and the old URL is 404), kept as a hash.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from monitor.api.auth import require_tenant
from monitor.api.common import now_of, path_id, path_parameter
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem
from monitor.calendar_feed import LOOKBACK, MEDIA_TYPE, REFRESH, render
from monitor.store import calendar_feeds
from monitor.store import subscriptions as sub_store

routes = web.RouteTableDef()
_SUFFIX = ".ics"


class CalendarFeed(BaseModel):
    subscription_id: str
    created_at: datetime
    url: str | None = Field(default=None,
                            description="the feed's secret address, returned only when made")


def feed_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/calendar/{token}{_SUFFIX}"


async def _own_subscription(request: web.Request) -> tuple[str, str]:
    tenant = await require_tenant(request)
    async with request.app[RUNTIME].store.connect() as conn:
        sub = await sub_store.get(conn, path_id(request), tenant.id)
    if sub is None:
        raise Problem(404, "No such subscription")
    return sub.id, tenant.id


async def make_feed(request: web.Request, sub_id: str, tenant_id: str) -> CalendarFeed:
    """A new secret address for the subscription's feed (the API's and the portal's)."""
    rt = request.app[RUNTIME]
    now = now_of(request)
    async with rt.store.begin() as conn:
        token = await calendar_feeds.rotate(conn, sub_id, tenant_id, now)
    return CalendarFeed(subscription_id=sub_id, created_at=now,
                        url=feed_url(rt.settings.api.public_url, token))


async def remove_feed(request: web.Request, sub_id: str, tenant_id: str) -> None:
    async with request.app[RUNTIME].store.begin() as conn:
        deleted = await calendar_feeds.delete(conn, sub_id, tenant_id)
    if not deleted:
        raise Problem(404, "No calendar feed")


@routes.post("/v1/subscriptions/{id}/calendar")
async def post_feed(request: web.Request) -> web.Response:
    """A new secret address for the subscription's feed; any earlier one stops working."""
    sub_id, tenant_id = await _own_subscription(request)
    feed = await make_feed(request, sub_id, tenant_id)
    return web.json_response(feed.model_dump(mode="json"), status=201)


@routes.get("/v1/subscriptions/{id}/calendar")
async def show_feed(request: web.Request) -> web.Response:
    sub_id, tenant_id = await _own_subscription(request)
    async with request.app[RUNTIME].store.connect() as conn:
        feed = await calendar_feeds.get(conn, sub_id, tenant_id)
    if feed is None:
        raise Problem(404, "No calendar feed", "POST to this address makes one")
    body = CalendarFeed(subscription_id=feed.subscription_id, created_at=feed.created_at)
    return web.json_response(body.model_dump(mode="json"))


@routes.delete("/v1/subscriptions/{id}/calendar")
async def delete_feed(request: web.Request) -> web.Response:
    sub_id, tenant_id = await _own_subscription(request)
    await remove_feed(request, sub_id, tenant_id)
    return web.Response(status=204)


@routes.get("/v1/calendar/{feed}")
async def serve_feed(request: web.Request) -> web.Response:
    token = request.match_info["feed"].removesuffix(_SUFFIX)
    rt = request.app[RUNTIME]
    now = now_of(request)
    async with rt.store.connect() as conn:
        feed = await calendar_feeds.by_token(conn, token)
        sub = None if feed is None else await sub_store.get(conn, feed.subscription_id,
                                                            feed.tenant_id)
        entries = [] if sub is None else await calendar_feeds.entries(conn, sub.id,
                                                                      now - LOOKBACK)
    if sub is None:
        raise Problem(404, "Unknown calendar feed",
                      "the address is not genuine, or was replaced by a newer one")
    # DTSTAMP changes on every render, so the ETag covers what a client would redraw.
    etag = _etag(sub.spec.name, entries)
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={int(REFRESH.total_seconds())}"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=render(entries, name=sub.spec.name, now=now),
                        content_type=MEDIA_TYPE, charset="utf-8", headers=headers)


def _etag(name: str, entries: list[calendar_feeds.Entry]) -> str:
    h = hashlib.sha256(name.encode())
    for e in entries:
        h.update(f"\0{e.condition.id}\0{e.condition.revision}\0{e.sequence}".encode())
    return f'"{h.hexdigest()[:32]}"'


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    sid = [path_parameter("id", "subscription id")]
    tags = ("calendar",)
    spec.operation("POST", "/v1/subscriptions/{id}/calendar",
                   summary="Make (or replace) the subscription's secret calendar feed address",
                   tags=tags, parameters=sid, responses={201: CalendarFeed})
    spec.operation("GET", "/v1/subscriptions/{id}/calendar",
                   summary="Whether the subscription has a calendar feed, and since when",
                   tags=tags, parameters=sid, responses={200: CalendarFeed})
    spec.operation("DELETE", "/v1/subscriptions/{id}/calendar",
                   summary="Remove the calendar feed (its address stops working)",
                   tags=tags, parameters=sid, responses={204: None})
    spec.operation("GET", "/v1/calendar/{feed}", summary="A calendar feed (RFC 5545)",
                   tags=tags, auth=None,
                   parameters=[{"name": "feed", "in": "path", "required": True,
                                "schema": {"type": "string"},
                                "description": "the secret token, then .ics"}],
                   responses={200: {"type": "string"}, 304: None, 404: None},
                   content_type=MEDIA_TYPE)
