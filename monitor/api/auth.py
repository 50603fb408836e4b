"""Bearer authentication: tenants by API key, the operator by the admin key.

Handlers call `require_tenant(request)` or `require_admin(request)`; both raise a 401 problem.
Comparisons of the admin key are constant-time; tenant keys are looked up by hash.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from monitor.api.keys import RUNTIME
from monitor.api.problems import Problem
from monitor.store import tenants as tenant_store
from monitor.store.tenants import Tenant


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_tenant(request: web.Request) -> Tenant:
    token = bearer(request)
    if token is None:
        raise Problem(401, "Missing bearer API key")
    rt = request.app[RUNTIME]
    async with rt.store.connect() as conn:
        tenant = await tenant_store.tenant_for_key(conn, token)
    if tenant is None:
        raise Problem(401, "Invalid or revoked API key")
    return tenant


def is_admin(request: web.Request) -> bool:
    token = bearer(request)
    admin = request.app[RUNTIME].settings.admin.key
    return (token is not None and admin is not None
            and hmac.compare_digest(token.encode(), admin.get_secret_value().encode()))


def require_admin(request: web.Request) -> None:
    if request.app[RUNTIME].settings.admin.key is None:
        raise Problem(401, "Admin API disabled", "set CAPMON_ADMIN_KEY to enable it")
    if not is_admin(request):
        raise Problem(401, "Admin key required")
