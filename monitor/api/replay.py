"""`POST /v1/notifications/{key}/replay`: send a notification again (tenant-scoped).

Replay puts a dead, failed or delivered key back to `pending` with a fresh retry schedule;
the deliver role's scheduler sends it within a tick, under the same `webhook-id` (receivers
dedupe on it). A key that is pending or in flight, suppressed, or whose subscription is not
active is refused with 409 and the reason.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from monitor import ledger
from monitor.api.auth import require_tenant
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem
from monitor.store import endpoints as endpoint_store
from monitor.store import subscriptions as sub_store

routes = web.RouteTableDef()


async def replay_notification(request: web.Request, tenant_id: str, key: str
                              ) -> dict[str, Any]:
    """Reopen the tenant's notification `key` (the API's and the portal's replay)."""
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    async with rt.store.begin() as conn:
        entry = await ledger.get(conn, key, tenant_id=tenant_id)
        if entry is None:
            raise Problem(404, "Unknown notification")
        if entry.state in (ledger.State.PENDING, ledger.State.SENDING):
            raise Problem(409, "Notification already queued or in flight",
                          f"state is {entry.state}")
        if entry.state == ledger.State.SUPPRESSED:
            raise Problem(409, "Notification was suppressed, not sent",
                          entry.last_error or "suppressed by decide")
        ep = await endpoint_store.get_endpoint(conn, entry.subscription_id, now)
        if ep is None or ep.status != sub_store.ACTIVE:
            raise Problem(409, "Subscription is not active",
                          "reactivate the subscription first" if ep is None
                          else f"{ep.status}: {ep.status_reason or ''}".strip())
        if not await ledger.reopen(conn, key, now, tenant_id=tenant_id):
            raise Problem(409, "Notification changed state; try again")
    return {"key": key, "state": "pending", "previous_state": entry.state,
            "next_attempt_at": now.isoformat()}


@routes.post("/v1/notifications/{key}/replay")
async def replay(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    body = await replay_notification(request, tenant.id, request.match_info["key"])
    return web.json_response(body, status=202)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    result = {"type": "object", "properties": {
        "key": {"type": "string"}, "state": {"type": "string"},
        "previous_state": {"type": "string"}, "next_attempt_at": {"type": "string"}}}
    app[SPEC].operation(
        "POST", "/v1/notifications/{key}/replay", summary="Send a notification again",
        tags=("notifications",),
        parameters=[{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
        responses={202: result, 409: None})
