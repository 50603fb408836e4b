"""Signing in and out of the portal, the session cookie, and the CSRF check of every form.

The session is a row in the store (monitor.store.portal_sessions), not a signed token, so
that signing out, and revoking the API key it was opened with, end it at once. The cookie is
HttpOnly (no script reads it), SameSite=Lax (not sent on another site's form posts; a link
from an email still opens the portal signed in), Path=/portal, and Secure when the portal is
served over https.

Every POST carries a synchronizer token: the session's `csrf_token`, in a hidden field,
compared in constant time. The sign-in form, which has no session yet, carries a token that
must match a cookie set with the form (SameSite=Strict), so another site cannot sign a
browser in to its own tenant either. A refused form is 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog
from aiohttp import web

from monitor.api.keys import RUNTIME
from monitor.api.portal.render import SESSION, page, problem_page, redirect
from monitor.api.problems import Problem
from monitor.config import ApiSettings
from monitor.store import portal_sessions

log = structlog.get_logger(__name__)

COOKIE = "capmon_portal"
SIGN_IN_COOKIE = "capmon_portal_sign_in"
PATH = "/portal"
SIGN_IN = f"{PATH}/sign-in"
SIGN_OUT = f"{PATH}/sign-out"
HOME = f"{PATH}/subscriptions"
# Methods that change nothing: no token asked, and a missing session sends to the sign-in.
SAFE = ("GET", "HEAD")

routes = web.RouteTableDef()


def _limits(api: ApiSettings) -> dict[str, timedelta]:
    return {"idle": timedelta(seconds=api.portal_idle_s),
            "max_age": timedelta(seconds=api.portal_max_age_s)}


def _secure(api: ApiSettings) -> bool:
    if api.portal_cookie_secure is not None:
        return api.portal_cookie_secure
    return api.public_url.startswith("https://")


def _same(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


async def _session(request: web.Request) -> portal_sessions.PortalSession | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    rt = request.app[RUNTIME]
    async with rt.store.begin() as conn:
        return await portal_sessions.session_for(conn, session_id, rt.clock.now(),
                                                 **_limits(rt.settings.api))


def _forbidden(request: web.Request) -> web.Response:
    log.info("portal_form_refused", path=request.path)
    return problem_page(request, 403, "Form refused",
                        "this form did not come from your portal session (its security token "
                        "is missing or wrong); reload the page and try again")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the sign-in form needs a live session; every POST its CSRF token. A
    problem a handler does not show beside its own form becomes a page."""
    try:
        if request.path != SIGN_IN:
            session = await _session(request)
            if session is None:
                if request.method not in SAFE:
                    return problem_page(request, 403, "Not signed in",
                                        "your session has ended; sign in again")
                return redirect(SIGN_IN)
            request[SESSION] = session
            if request.method not in SAFE:
                form = await request.post()
                if not _same(form.get("csrf"), session.csrf_token):
                    return _forbidden(request)
        return await handler(request)
    except Problem as problem:
        return problem_page(request, problem.status, problem.title, problem.detail)


def _sign_in_form(request: web.Request, *, status: int = 200, error: str | None = None,
                  notice: str | None = None) -> web.Response:
    token = secrets.token_urlsafe(32)
    resp = page(request, "sign_in.html.j2", status=status, token=token, error=error,
                notice=notice)
    resp.set_cookie(SIGN_IN_COOKIE, token, path=PATH, httponly=True, samesite="Strict",
                    secure=_secure(request.app[RUNTIME].settings.api), max_age=3600)
    return resp


@routes.get(SIGN_IN)
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if await _session(request) is not None:
        return redirect(HOME)
    notice = "You are signed out." if "signed-out" in request.query else None
    return _sign_in_form(request, notice=notice)


@routes.post(SIGN_IN)
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if not cookie or not _same(form.get("csrf"), cookie):
        return _forbidden(request)
    key = form.get("api_key")
    rt = request.app[RUNTIME]
    api, now = rt.settings.api, rt.clock.now()
    async with rt.store.begin() as conn:
        await portal_sessions.purge_expired(conn, now, **_limits(api))
        opened = (await portal_sessions.open_session(conn, key.strip(), now)
                  if isinstance(key, str) and key.strip() else None)
    if opened is None:
        # The API's own words for a key it refuses.
        return _sign_in_form(request, status=401, error="Invalid or revoked API key")
    session_id, session = opened
    log.info("portal_signed_in", tenant_id=session.tenant.id)
    resp = redirect(HOME)
    # A fresh id at every sign-in: an id planted before it is worth nothing after.
    resp.set_cookie(COOKIE, session_id, path=PATH, httponly=True, samesite="Lax",
                    secure=_secure(api), max_age=int(api.portal_max_age_s))
    resp.del_cookie(SIGN_IN_COOKIE, path=PATH)
    return resp


@routes.post(SIGN_OUT)
async def sign_out(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    async with rt.store.begin() as conn:
        await portal_sessions.close_session(conn, request.cookies[COOKIE])
    resp = redirect(f"{SIGN_IN}?signed-out")
    resp.del_cookie(COOKIE, path=PATH)
    return resp
