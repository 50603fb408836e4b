"""The plain pages that links in SMS and email open (unsubscribe, acknowledge, detail): one
HTML shell, the headers they carry, and a notification's conditions as a stranger may read
them.

They are opened from a mail or a text, unauthenticated and possibly forwarded: no script, no
frame, no form that posts elsewhere, nothing cached, indexed or sent on in a Referer.
"""

from __future__ import annotations

import html
from datetime import datetime

from aiohttp import web

from monitor.notifications import Notification, NotificationItem
from monitor.wording import public_line, wording

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_SHELL = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
          "</head><body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto;\">"
          "{body}</body></html>")


def page(title: str, body: str, status: int = 200) -> web.Response:
    """`body` is HTML the caller escaped; `title` is text."""
    return web.Response(text=_SHELL.format(title=html.escape(title), body=body), status=status,
                        content_type="text/html", headers=HEADERS)


def message_page(title: str, text: str, status: int) -> web.Response:
    """A page that only says something: a refusal, a result."""
    return page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>", status)


def items_list(n: Notification) -> str:
    """The notification's conditions (public grid information); none for a test."""
    if n.test:
        return ""
    return "<ul>" + "".join(_item(i, n.decided_at) for i in n.items) + "</ul>"


def _item(i: NotificationItem, now: datetime) -> str:
    c = i.condition
    words = wording(c, now)
    return (
        f"<li><b>{html.escape(public_line(i, now))}</b>: {html.escape(c.kind)} "
        f"<code>{html.escape(c.id)}</code>, {html.escape(c.severity)}, {html.escape(c.status)}"
        + (f", {html.escape(words.when.long())}" if words.when.known else "")
        + (f", {html.escape(words.where.text())}" if words.where.places else "")
        + (f", {html.escape(words.reference)}" if words.reference else "")
        + _source_link(c.source_url) + "</li>")


def _source_link(url: str | None) -> str:
    # CAISO's and SCE's pages are https; a notice read from capmon's own mailbox or mail drop
    # carries an imap:// or internal http:// address that strangers have no business seeing.
    if url is None or not url.startswith("https://"):
        return ""
    return f" (<a href=\"{html.escape(url, quote=True)}\">source</a>)"
