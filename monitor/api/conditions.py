"""`/v1/conditions`: what is in effect now, and the history of revisions, with filters.

Conditions are public grid facts, not tenant data, but reading them still takes an API key.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from monitor.api.auth import require_tenant
from monitor.api.common import (
    IsoDatetime,
    PageQuery,
    next_offset,
    parse_query,
    path_id,
    path_parameter,
    query_parameters,
)
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.problems import Problem
from monitor.events import Condition, Kind
from monitor.store import conditions as condition_store

routes = web.RouteTableDef()

StatusName = Literal["scheduled", "active", "ended", "cancelled"]


class ConditionQuery(PageQuery):
    kind: list[Kind] = Field(default_factory=list, max_length=20)
    status: list[StatusName] = Field(
        default_factory=list, max_length=4,
        description="default: scheduled and active (what is in effect or announced)")
    since: IsoDatetime | None = Field(default=None, description="observed at or after")


class ConditionPage(BaseModel):
    items: list[Condition]
    limit: int
    offset: int
    next_offset: int | None


def _page(q: PageQuery, items: list[Condition]) -> web.Response:
    page = ConditionPage(items=items, limit=q.limit, offset=q.offset,
                         next_offset=next_offset(q, len(items)))
    return web.json_response(page.model_dump(mode="json"))


@routes.get("/v1/conditions")
async def current(request: web.Request) -> web.Response:
    await require_tenant(request)
    q = parse_query(request, ConditionQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        items = await condition_store.list_conditions(
            conn, open_only=not q.status, statuses=q.status, kinds=q.kind, since=q.since,
            limit=q.limit, offset=q.offset)
    return _page(q, items)


@routes.get("/v1/conditions/history")
async def history(request: web.Request) -> web.Response:
    await require_tenant(request)
    q = parse_query(request, ConditionQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        items = await condition_store.list_history(
            conn, kinds=q.kind, statuses=q.status, since=q.since, limit=q.limit,
            offset=q.offset)
    return _page(q, items)


@routes.get("/v1/conditions/{id}/history")
async def one_history(request: web.Request) -> web.Response:
    await require_tenant(request)
    q = parse_query(request, PageQuery)
    condition_id = path_id(request)
    async with request.app[RUNTIME].store.connect() as conn:
        items = await condition_store.list_history(conn, condition_id=condition_id,
                                                   limit=q.limit, offset=q.offset)
        if not items and q.offset == 0 and await condition_store.get(conn, condition_id) is None:
            raise Problem(404, "No such condition")
    return _page(q, items)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    tags = ("conditions",)
    spec.operation("GET", "/v1/conditions", summary="Conditions in effect now (or filtered)",
                   tags=tags, responses={200: ConditionPage},
                   parameters=query_parameters(ConditionQuery))
    spec.operation("GET", "/v1/conditions/history", summary="Every revision, filtered",
                   tags=tags, responses={200: ConditionPage},
                   parameters=query_parameters(ConditionQuery))
    spec.operation("GET", "/v1/conditions/{id}/history", summary="One condition's revisions",
                   tags=tags, responses={200: ConditionPage},
                   parameters=[path_parameter("id", "condition id"),
                               *query_parameters(PageQuery)])
