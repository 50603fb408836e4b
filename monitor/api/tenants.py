"""`/v1/tenants`: the operator manages tenants (CCAs) and their API keys with the admin key.

A key is shown once, when the tenant is created or its key rotated; the store keeps only its
hash. Revoking takes effect on the very next request (keys are looked up per request). A new
tenant's admin contact is subscribed to capmon's own health unless `health_alerts` is false
(monitor.admin_health).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from email_validator import EmailNotValidError, validate_email
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from monitor.admin_health import subscribe_admin
from monitor.api.auth import require_admin
from monitor.api.channel_schema import EMAIL_PATTERN
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
from monitor.errors import StoreConflict
from monitor.store import tenants as tenant_store
from monitor.store.subscriptions import aware
from monitor.store.tenants import Tenant
from monitor.subscriptions import Name

routes = web.RouteTableDef()


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    # The pattern is a part of what is taken, as for an email channel (channel_schema).
    admin_contact: Annotated[str, Field(json_schema_extra={
        "minLength": len("a@b.io"), "pattern": EMAIL_PATTERN})] | None = Field(
        default=None, max_length=320, description="email of the tenant's administrator")
    health_alerts: StrictBool = Field(
        default=True, description="subscribe admin_contact by email to capmon's own health "
                                  "(source.health: what capmon cannot see, and when it sees "
                                  "again)")

    @field_validator("admin_contact")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return validate_email(v, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from None


class TenantOut(BaseModel):
    id: str
    name: str
    admin_contact: str | None
    status: str
    created_at: AwareDatetime


class HealthSubscription(BaseModel):
    id: str | None = Field(description="the admin contact's source.health subscription, if "
                                       "one was made")
    detail: str


class TenantCreated(TenantOut):
    api_key: str = Field(description="shown once; store it now")
    health_subscription: HealthSubscription


class KeyRotated(BaseModel):
    id: str
    api_key: str = Field(description="shown once; every earlier key is revoked")


class KeysRevoked(BaseModel):
    id: str
    revoked: int


class TenantPage(BaseModel):
    items: list[TenantOut]
    limit: int
    offset: int
    next_offset: int | None


def _out(t: Tenant) -> TenantOut:
    return TenantOut(id=t.id, name=t.name, admin_contact=t.admin_contact, status=t.status,
                     created_at=aware(t.created_at))


@routes.post("/v1/tenants")
async def create_tenant(request: web.Request) -> web.Response:
    require_admin(request)
    body = await parse_body(request, TenantCreate)
    rt = request.app[RUNTIME]
    try:
        async with rt.store.begin() as conn:
            tenant, key = await tenant_store.create_tenant(conn, body.name, body.admin_contact,
                                                           now_of(request))
            health = await subscribe_admin(conn, rt.settings, tenant.id, body.admin_contact,
                                           now_of(request), wanted=body.health_alerts)
    except StoreConflict:
        raise Problem(409, "Tenant exists", f"a tenant named {body.name!r} exists") from None
    out = TenantCreated(**_out(tenant).model_dump(), api_key=key,
                        health_subscription=HealthSubscription(id=health.subscription_id,
                                                               detail=health.detail))
    return web.json_response(out.model_dump(mode="json"), status=201)


@routes.get("/v1/tenants")
async def list_tenants(request: web.Request) -> web.Response:
    require_admin(request)
    q = parse_query(request, PageQuery)
    async with request.app[RUNTIME].store.connect() as conn:
        all_tenants = await tenant_store.list_tenants(conn)
    items = [_out(t) for t in all_tenants[q.offset:q.offset + q.limit]]
    page = TenantPage(items=items, limit=q.limit, offset=q.offset,
                      next_offset=next_offset(q, len(items)))
    return web.json_response(page.model_dump(mode="json"))


async def _existing(request: web.Request) -> str:
    tenant_id = path_id(request)
    async with request.app[RUNTIME].store.connect() as conn:
        if await tenant_store.get_tenant(conn, tenant_id) is None:
            raise Problem(404, "No such tenant")
    return tenant_id


@routes.post("/v1/tenants/{id}/keys")
async def rotate_key(request: web.Request) -> web.Response:
    require_admin(request)
    tenant_id = await _existing(request)
    now = now_of(request)
    async with request.app[RUNTIME].store.begin() as conn:
        key = await tenant_store.add_api_key(conn, tenant_id, now)
        await tenant_store.revoke_api_keys(conn, tenant_id, now,
                                           except_hash=tenant_store.hash_key(key))
    return web.json_response(KeyRotated(id=tenant_id, api_key=key).model_dump(), status=201)


@routes.delete("/v1/tenants/{id}/keys")
async def revoke_keys(request: web.Request) -> web.Response:
    require_admin(request)
    tenant_id = await _existing(request)
    async with request.app[RUNTIME].store.begin() as conn:
        n = await tenant_store.revoke_api_keys(conn, tenant_id, now_of(request))
    return web.json_response(KeysRevoked(id=tenant_id, revoked=n).model_dump())


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    tid = [path_parameter("id", "tenant id")]
    spec.operation("POST", "/v1/tenants", summary="Create a tenant and its first API key",
                   tags=("tenants",), auth="admin", request=TenantCreate,
                   responses={201: TenantCreated}, problems=(409,))
    spec.operation("GET", "/v1/tenants", summary="List tenants", tags=("tenants",),
                   auth="admin", responses={200: TenantPage},
                   parameters=query_parameters(PageQuery))
    spec.operation("POST", "/v1/tenants/{id}/keys",
                   summary="Rotate: issue a new API key and revoke every other",
                   tags=("tenants",), auth="admin", parameters=tid,
                   responses={201: KeyRotated})
    spec.operation("DELETE", "/v1/tenants/{id}/keys", summary="Revoke every API key",
                   tags=("tenants",), auth="admin", parameters=tid,
                   responses={200: KeysRevoked})
