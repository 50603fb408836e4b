"""One-click unsubscribe (RFC 8058) for email, and the notification detail page for links.

`POST /v1/unsubscribe/{token}` unsubscribes (mail clients send `List-Unsubscribe=One-Click`;
the confirmation page's form posts too). `GET` never changes anything, because link scanners
and previewers follow links: it shows a page with a button. Tokens are HMACs under
`api.link_secret` (monitor.links), so they can't be guessed; one sent to a former address
is 404, one older than `UNSUBSCRIBE_TOKEN_DAYS` 410.

`GET /n/{prefix}` is where SMS and email "details" links point: what the notification was
about and its conditions (public grid information), and whether someone has it (how and when
it was acknowledged), never its tenant, subscription, target, who acknowledged it or any
secret: the link is unauthenticated and may be forwarded.
"""

from __future__ import annotations

import html

from aiohttp import web

from monitor import ledger
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.pages import items_list, page
from monitor.api.problems import Problem
from monitor.ledger import acks
from monitor.links import (
    DETAIL_PREFIX_CHARS,
    UNSUBSCRIBE_TOKEN_DAYS,
    TokenCheck,
    check_unsubscribe_token,
    token_subscription,
)
from monitor.store import endpoints as endpoint_store
from monitor.wording import pacific, public_summary

routes = web.RouteTableDef()
UNSUBSCRIBE_REASON = "email one-click unsubscribe"


async def _subscription_for(request: web.Request) -> str:
    """The subscription the link was sent for, if it still sends to the address the link was
    sent to (a link of a former address must not unsubscribe the new one) and is not expired."""
    rt = request.app[RUNTIME]
    secret = rt.settings.api.link_secret
    token = request.match_info["token"]
    sub_id = token_subscription(token)
    check = TokenCheck.INVALID
    if secret is not None and sub_id is not None:
        now = rt.clock.now()
        async with rt.store.connect() as conn:
            endpoint = await endpoint_store.get_endpoint(conn, sub_id, now)
        if endpoint is not None:
            check = check_unsubscribe_token(secret, token, endpoint.target, now)
    if check is TokenCheck.VALID and sub_id is not None:
        return sub_id
    if check is TokenCheck.EXPIRED:
        raise Problem(410, "Unsubscribe link expired",
                      f"links are good for {UNSUBSCRIBE_TOKEN_DAYS} days; use the one in a "
                      "recent alert")
    raise Problem(404, "Unknown or invalid unsubscribe link",
                  "the link is not genuine, or this subscription no longer sends to the "
                  "address it was sent to")


@routes.get("/v1/unsubscribe/{token}")
async def confirm_page(request: web.Request) -> web.Response:
    await _subscription_for(request)
    action = html.escape(request.path, quote=True)
    return page("Unsubscribe from capmon alerts", (
        "<h1>Unsubscribe from capmon alerts?</h1>"
        "<p>You will stop receiving these email alerts. Nothing has changed yet.</p>"
        f"<form method=\"post\" action=\"{action}\">"
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        "<button type=\"submit\">Unsubscribe</button></form>"))


@routes.post("/v1/unsubscribe/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    sub_id = await _subscription_for(request)
    rt = request.app[RUNTIME]
    async with rt.store.begin() as conn:
        await endpoint_store.opt_out(conn, sub_id, UNSUBSCRIBE_REASON, rt.clock.now())
    return page("Unsubscribed", "<h1>Unsubscribed</h1>"
                 "<p>You will not receive these alerts any more.</p>")


@routes.get("/n/{prefix}")
async def detail(request: web.Request) -> web.Response:
    prefix = request.match_info["prefix"].lower()
    if len(prefix) != DETAIL_PREFIX_CHARS or not all(c in "0123456789abcdef" for c in prefix):
        raise Problem(404, "Unknown notification")
    rt = request.app[RUNTIME]
    async with rt.store.connect() as conn:
        n = await ledger.by_prefix(conn, prefix)
        ack = None if n is None else (await acks.acks_of(conn, [n.key])).get(n.key)
    if n is None:
        raise Problem(404, "Unknown notification")
    title = public_summary(n)
    # The link travels in SMS and email and can be forwarded: the page shows the conditions
    # (public grid information), never the tenant, the subscription (its name, its threshold
    # levels, the test condition's id) or the recipient, nor who acknowledged it (an address,
    # a phone number, a name): that someone has it, how and when, is what a colleague needs.
    taken = "" if ack is None else (
        f"<p><strong>Acknowledged</strong> ({html.escape(ack.via.value)}) "
        f"{html.escape(pacific(ack.at))}: someone has it.</p>")
    return page(title, f"<h1>{html.escape(title)}</h1><p>Severity: "
                f"{html.escape(n.severity)}. Decided {html.escape(pacific(n.decided_at))}."
                f"</p>{taken}{items_list(n)}")


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    token = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]
    page = {"type": "string"}
    spec.operation("GET", "/v1/unsubscribe/{token}", summary="Unsubscribe confirmation page "
                   "(changes nothing)", tags=("email",), auth=None, parameters=token,
                   responses={200: page, 404: None, 410: None}, content_type="text/html")
    spec.operation("POST", "/v1/unsubscribe/{token}", summary="RFC 8058 one-click unsubscribe",
                   tags=("email",), auth=None, parameters=token,
                   responses={200: page, 404: None, 410: None}, content_type="text/html")
    spec.operation("GET", "/n/{prefix}", summary="Notification detail page (SMS/email links)",
                   tags=("notifications",), auth=None,
                   parameters=[{"name": "prefix", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                   responses={200: page, 404: None}, content_type="text/html")
