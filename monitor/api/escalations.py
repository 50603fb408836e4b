"""`/v1/escalation-policies` (a tenant's policies: created, listed, read, replaced, deleted)
and `/v1/escalations` (the runs: which steps paged whom, when, and who acknowledged).

Scoped to the caller's tenant like subscriptions: another tenant's policy is 404, and a
policy may name only the tenant's own subscriptions (422). A subscription already held by
another policy of the same band is a 409. Deleting a policy cancels its runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web
from pydantic import BaseModel, Field

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
from monitor.api.notifications import Acknowledgement
from monitor.api.problems import Problem, parse_body
from monitor.escalation import Policy, PolicySpec, Run, RunState
from monitor.ledger import acks
from monitor.store import escalation_policies as policy_store
from monitor.store import escalations

routes = web.RouteTableDef()
_MISSING = "No such escalation policy"


class PolicyPage(BaseModel):
    items: list[Policy]
    limit: int
    offset: int
    next_offset: int | None


class RunQuery(PageQuery):
    condition_id: str | None = Field(default=None, max_length=200)
    state: RunState | None = None


class RunOut(Run):
    acknowledgement: Acknowledgement | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    limit: int
    offset: int
    next_offset: int | None


def _refused(exc: policy_store.PolicyRefused) -> Problem:
    if exc.reason == "not_found":
        return Problem(422, "Unknown subscription", exc.detail,
                       [{"loc": exc.loc, "msg": exc.detail, "reason": "not_found"}])
    return Problem(409, "Subscription already escalated to", exc.detail,
                   [{"loc": exc.loc, "msg": exc.detail, "reason": "overlap"}])


def _found(policy: Policy | None) -> web.Response:
    """The policy, or 404 when the tenant has none of that id (another tenant's is none)."""
    if policy is None:
        raise Problem(404, _MISSING)
    return web.json_response(policy.model_dump(mode="json"))


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except policy_store.PolicyRefused as exc:
        raise _refused(exc) from None


@routes.post("/v1/escalation-policies")
async def create(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    spec = await parse_body(request, PolicySpec)
    async with request.app[RUNTIME].store.begin() as conn:
        with _refusals():
            policy = await policy_store.create(conn, tenant.id, spec, now_of(request))
    return web.json_response(policy.model_dump(mode="json"), status=201)


@routes.get("/v1/escalation-policies")
async def list_policies(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    q = parse_query(request, PageQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        found = await policy_store.list_policies(conn, tenant.id, limit=q.limit,
                                                 offset=q.offset)
    page = PolicyPage(items=found, limit=q.limit, offset=q.offset,
                      next_offset=next_offset(q, len(found)))
    return web.json_response(page.model_dump(mode="json"))


@routes.get("/v1/escalation-policies/{id}")
async def get_one(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    async with request.app[RUNTIME].store.connect() as conn:
        policy = await policy_store.get(conn, path_id(request), tenant.id)
    return _found(policy)


@routes.put("/v1/escalation-policies/{id}")
async def replace(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    policy_id = path_id(request)
    spec = await parse_body(request, PolicySpec)
    async with request.app[RUNTIME].store.begin() as conn:
        with _refusals():
            policy = await policy_store.replace(conn, policy_id, tenant.id, spec,
                                                now_of(request))
    return _found(policy)


@routes.delete("/v1/escalation-policies/{id}")
async def delete(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    async with request.app[RUNTIME].store.begin() as conn:
        deleted = await policy_store.delete(conn, path_id(request), tenant.id,
                                            now_of(request))
    if not deleted:
        raise Problem(404, _MISSING)
    return web.Response(status=204)


@routes.get("/v1/escalations")
async def list_runs(request: web.Request) -> web.Response:
    tenant = await require_tenant(request)
    q = parse_query(request, RunQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        runs = await escalations.list_runs(conn, tenant.id, condition_id=q.condition_id,
                                           state=q.state, limit=q.limit, offset=q.offset)
        taken = await acks.acks_of(conn, [r.acknowledged_key for r in runs
                                          if r.acknowledged_key is not None])
    items = []
    for r in runs:
        a = taken.get(r.acknowledged_key or "")
        items.append(RunOut(**r.model_dump(), acknowledgement=None if a is None else
                            Acknowledgement(by=a.by, via=a.via, at=a.at)))
    page = RunPage(items=items, limit=q.limit, offset=q.offset,
                   next_offset=next_offset(q, len(runs)))
    return web.json_response(page.model_dump(mode="json"))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    pid = [path_parameter("id", "escalation policy id")]
    tags = ("escalations",)
    path = "/v1/escalation-policies"
    spec.operation("POST", path, summary="Create an escalation policy", tags=tags,
                   request=PolicySpec, responses={201: Policy}, problems=(409,))
    spec.operation("GET", path, summary="List this tenant's escalation policies", tags=tags,
                   responses={200: PolicyPage}, parameters=query_parameters(PageQuery))
    spec.operation("GET", path + "/{id}", summary="One escalation policy", tags=tags,
                   parameters=pid, responses={200: Policy})
    spec.operation("PUT", path + "/{id}", summary="Replace an escalation policy (runs "
                   "already climbing keep their ladder)", tags=tags, parameters=pid,
                   request=PolicySpec, responses={200: Policy}, problems=(409,))
    spec.operation("DELETE", path + "/{id}", summary="Delete an escalation policy (its runs "
                   "are cancelled)", tags=tags, parameters=pid, responses={204: None})
    spec.operation("GET", "/v1/escalations", summary="Escalation runs: the steps paged and "
                   "the acknowledgement", tags=tags, responses={200: RunPage},
                   parameters=query_parameters(RunQuery))
