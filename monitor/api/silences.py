"""`/v1/silences`: a tenant's silences, created, listed, expired and deleted.

Scoped to the caller's tenant like subscriptions: another tenant's silence is 404. A silence
naming subscriptions may name only the tenant's own. Expiring keeps the silence (its id stays
the reason of what it held back, and the list shows it as expired); deleting removes it.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from monitor.api.auth import require_tenant
from monitor.api.common import (
    PageQuery,
    next_offset,
    now_of,
    parse_query,
    path_id,
    path_parameter,
    query_parameters,
)
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem, parse_body
from monitor.silences import Silence, SilenceSpec, SilenceState, SilenceView
from monitor.store import silences as silence_store
from monitor.store import subscriptions as sub_store

routes = web.RouteTableDef()


class SilenceQuery(PageQuery):
    state: SilenceState | None = None


class SilencePage(BaseModel):
    items: list[SilenceView]
    limit: int
    offset: int
    next_offset: int | None


async def create_silence(request: web.Request, tenant_id: str, spec: SilenceSpec) -> Silence:
    """Checked and stored (the API's and the portal's): 422 for an end already past or a
    subscription that is not the tenant's."""
    now = now_of(request)
    if spec.ends_at <= now:
        raise Problem(422, "Silence already over", "ends_at must be in the future",
                      [{"loc": ["ends_at"], "msg": "must be in the future",
                        "reason": "in_the_past"}])
    async with request.app[RUNTIME].store.begin() as conn:
        missing = await sub_store.not_owned(conn, tenant_id, spec.match.subscription_ids)
        if missing:
            raise Problem(422, "Unknown subscription", f"no subscription {missing[0]}",
                          [{"loc": ["match", "subscription_ids"],
                            "msg": f"no subscription {missing[0]}", "reason": "not_found"}])
        return await silence_store.create(conn, tenant_id, spec, now)


async def expire_silence(request: web.Request, tenant_id: str, silence_id: str) -> Silence:
    async with request.app[RUNTIME].store.begin() as conn:
        silence = await silence_store.expire(conn, silence_id, tenant_id, now_of(request))
    if silence is None:
        raise Problem(404, "No such silence")
    return silence


async def delete_silence(request: web.Request, tenant_id: str, silence_id: str) -> None:
    async with request.app[RUNTIME].store.begin() as conn:
        deleted = await silence_store.delete(conn, silence_id, tenant_id)
    if not deleted:
        raise Problem(404, "No such silence")


@routes.post("/v1/silences")
async def create(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    spec = await parse_body(request, SilenceSpec)
    silence = await create_silence(request, tenant.id, spec)
    return web.json_response(SilenceView.of(silence, now_of(request)).model_dump(mode="json"),
                             status=201)


@routes.get("/v1/silences")
async def list_silences(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    q = parse_query(request, SilenceQuery)
    now = now_of(request)
    async with request.app[RUNTIME].store.connect() as conn:
        found = await silence_store.list_silences(conn, tenant.id, now, state=q.state,
                                                  limit=q.limit, offset=q.offset)
    page = SilencePage(items=[SilenceView.of(s, now) for s in found], limit=q.limit,
                       offset=q.offset, next_offset=next_offset(q, len(found)))
    return web.json_response(page.model_dump(mode="json"))


@routes.get("/v1/silences/{id}")
async def get_one(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    async with request.app[RUNTIME].store.connect() as conn:
        silence = await silence_store.get(conn, path_id(request), tenant.id)
    if silence is None:
        raise Problem(404, "No such silence")
    return web.json_response(SilenceView.of(silence, now_of(request)).model_dump(mode="json"))


@routes.post("/v1/silences/{id}/expire")
async def expire(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    silence = await expire_silence(request, tenant.id, path_id(request))
    return web.json_response(SilenceView.of(silence, now_of(request)).model_dump(mode="json"))


@routes.delete("/v1/silences/{id}")
async def delete(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    await delete_silence(request, tenant.id, path_id(request))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    sid = [path_parameter("id", "silence id")]
    tags = ("silences",)
    spec.operation("POST", "/v1/silences", summary="Create a silence", tags=tags,
                   request=SilenceSpec, responses={201: SilenceView})
    spec.operation("GET", "/v1/silences", summary="List this tenant's silences", tags=tags,
                   responses={200: SilencePage}, parameters=query_parameters(SilenceQuery))
    spec.operation("GET", "/v1/silences/{id}", summary="One silence", tags=tags,
                   parameters=sid, responses={200: SilenceView})
    spec.operation("POST", "/v1/silences/{id}/expire", summary="End a silence now",
                   tags=tags, parameters=sid, responses={200: SilenceView})
    spec.operation("DELETE", "/v1/silences/{id}", summary="Delete a silence", tags=tags,
                   parameters=sid, responses={204: None})
