"""Bearer authentication: tenants by API key, the operator by the admin key.

Handlers call `require_tenant(request)` or `require_admin(request)`; both raise a 401 problem
with the `WWW-Authenticate: Bearer` challenge RFC 6750 asks for (`error="invalid_token"` when a
key was sent but is not accepted).
Comparisons of the admin key are constant-time; tenant keys are looked up by hash.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from monitor.api.keys import RUNTIME
from monitor.api.problems import Problem
from monitor.store import tenants as tenant_store
from monitor.store.tenants import Tenant

REALM = "capmon"


def unauthorized(title: str, detail: str | None = None, *, token_sent: bool) -> Problem:
    challenge = f'Bearer realm="{REALM}"'
    if token_sent:
        challenge += ', error="invalid_token"'
    return Problem(401, title, detail, headers={"WWW-Authenticate": challenge})


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_tenant(request: web.Request) -> Tenant:
    token = bearer(request)
    if token is None:
        raise unauthorized("Missing bearer API key", token_sent=False)
    rt = request.app[RUNTIME]
    async with rt.store.connect() as conn:
        tenant = await tenant_store.tenant_for_key(conn, token)
    if tenant is None:
        raise unauthorized("Invalid or revoked API key", token_sent=True)
    return tenant


def is_admin(request: web.Request) -> bool:
    token = bearer(request)
    admin = request.app[RUNTIME].settings.admin.key
    return (token is not None and admin is not None
            and hmac.compare_digest(token.encode(), admin.get_secret_value().encode()))


def require_admin(request: web.Request) -> None:
    if request.app[RUNTIME].settings.admin.key is None:
        raise unauthorized("Admin API disabled", "set CAPMON_ADMIN_KEY to enable it",
                           token_sent=bearer(request) is not None)
    if not is_admin(request):
        raise unauthorized("Admin key required", token_sent=bearer(request) is not None)
