"""`/v1/ack/{token}`: acknowledging a notification from its email ("I have it").

The token (monitor.links) is the capability: an HMAC under `api.link_secret` of the
notification key, the address the mail went to and its day. `GET` shows what is being
acknowledged and a button, and changes nothing, because mail scanners and link previewers
fetch links. `POST` acknowledges, by that address, via email; a second POST of the same link
answers that it is done (200), one after somebody else's acknowledgement says whose (409, as
is one for a notification that cannot be acknowledged; a GET says the same with 200).
Like the one-click unsubscribe, the POST takes no other proof than the token: whoever holds
the mail may act on it, from whatever page the form was posted.

Every answer is a page, refusals included: the reader came from a mail, not an API client.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from monitor import ledger
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.pages import items_list, message_page, page
from monitor.ledger import acks
from monitor.links import ACK_TOKEN_DAYS, TokenCheck, check_ack_token, token_key
from monitor.notifications import EmailChannel
from monitor.store import endpoints as endpoint_store
from monitor.wording import pacific

routes = web.RouteTableDef()
PATH = "/v1/ack/{token}"


@dataclass(frozen=True)
class _Link:
    entry: ledger.LedgerEntry
    address: str


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


_INVALID = ("Unknown or invalid acknowledgement link",
            "This link is not genuine, or not for this alert. Use the link in the alert's mail.")


async def _link(request: web.Request) -> _Link:
    """The notification the link was issued for and the address it was sent to."""
    rt = request.app[RUNTIME]
    secret = rt.settings.api.link_secret
    token = request.match_info["token"]
    key = token_key(token)
    if secret is None or key is None:
        raise _Refused(message_page(*_INVALID, 404))
    now = rt.clock.now()
    async with rt.store.connect() as conn:
        entry = await ledger.get(conn, key)
        endpoint = None if entry is None else \
            await endpoint_store.get_endpoint(conn, entry.subscription_id, now)
    if entry is None:
        raise _Refused(message_page(*_INVALID, 404))
    # The address decide addressed, and the one deliver sent to (the subscription's, should
    # it have moved in between): either received the mail.
    channel = entry.notification().channel
    addresses = [channel.address] if isinstance(channel, EmailChannel) else []
    if endpoint is not None and endpoint.channel_type == "email":
        addresses.append(endpoint.target)
    check, address = check_ack_token(secret, token, addresses, now)
    if check is TokenCheck.EXPIRED:
        raise _Refused(message_page(
            "Acknowledgement link expired",
            f"Links to acknowledge an alert are good for {ACK_TOKEN_DAYS} days. If the alert "
            "still needs somebody, acknowledge it in the portal or by the API.", 410))
    if check is not TokenCheck.VALID or address is None:
        raise _Refused(message_page(*_INVALID, 404))
    return _Link(entry, address)


# A GET only looks, so what it finds is its answer (200); a POST that could not acknowledge
# is refused (409), as the API's is.
def _taken(first: acks.Ack, address: str, conflict: int) -> web.Response:
    when = pacific(first.at)
    if first.via is acks.Via.EMAIL and first.by.lower() == address.lower():
        return message_page("Acknowledged", f"You acknowledged this alert at {when}.", 200)
    return message_page("Already acknowledged", f"{first.by} acknowledged this alert "
                                                f"({first.via.value}) at {when}.", conflict)


def _not_acknowledgeable(refused: acks.AckRefused, conflict: int) -> web.Response:
    return message_page("Not acknowledgeable", f"This alert cannot be acknowledged: "
                                               f"{refused.detail}.", conflict)


def _with_link(handler: Callable[[web.Request, _Link], Awaitable[web.Response]]
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`handler` for a genuine link; the refusal's page for any other."""
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.Response:
        try:
            link = await _link(request)
        except _Refused as refused:
            return refused.response
        return await handler(request, link)
    return checked


@routes.get(PATH)
@_with_link
async def confirm_page(request: web.Request, link: _Link) -> web.Response:
    rt = request.app[RUNTIME]
    async with rt.store.connect() as conn:
        first = (await acks.acks_of(conn, [link.entry.key])).get(link.entry.key)
        refusal = None if first else await acks.refusal(conn, link.entry)
    if first is not None:
        return _taken(first, link.address, 200)
    if refusal is not None:
        return _not_acknowledgeable(refusal, 200)
    n = link.entry.notification()
    action = html.escape(request.path, quote=True)
    return page(f"Acknowledge: {n.summary}", (
        f"<h1>{html.escape(n.summary)}</h1>"
        f"<p>Severity: {html.escape(n.severity)}. Decided {html.escape(pacific(n.decided_at))}."
        f"</p>{items_list(n)}"
        f"<p>Acknowledging records that you, {html.escape(link.address)}, have this alert. "
        "Nothing has changed yet.</p>"
        f"<form method=\"post\" action=\"{action}\">"
        "<button type=\"submit\">I have it</button></form>"))


@routes.post(PATH)
@_with_link
async def acknowledge(request: web.Request, link: _Link) -> web.Response:
    rt = request.app[RUNTIME]
    try:
        async with rt.store.begin() as conn:
            ack = await acks.acknowledge(conn, link.entry.key, link.address, acks.Via.EMAIL,
                                         rt.clock.now())
    except acks.AckRefused as refused:
        if refused.first is not None:
            return _taken(refused.first, link.address, 409)
        if refused.reason == "not_found":  # deleted between the look-up and now
            return message_page(*_INVALID, 404)
        return _not_acknowledgeable(refused, 409)
    return message_page("Acknowledged", f"Recorded: {ack.by} has this alert, since "
                                        f"{pacific(ack.at)}.", 200)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    spec = app[SPEC]
    token = [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}]
    page_schema = {"type": "string"}
    for method, summary in (("GET", "Acknowledgement page of an email's link (changes "
                                    "nothing)"),
                            ("POST", "Acknowledge a notification from its email's link")):
        spec.operation(method, PATH, summary=summary, tags=("email",), auth=None,
                       parameters=token, responses={200: page_schema, 404: None, 409: None,
                                                    410: None},
                       content_type="text/html")
