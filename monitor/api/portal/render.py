"""Pages of the portal: one Jinja2 environment (autoescaped), the headers every page carries,
and the page a refused request gets (a problem's title and detail, never a stack trace)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from monitor.api.portal.forms import problem_lines
from monitor.clock import PACIFIC
from monitor.store.portal_sessions import PortalSession
from monitor.store.subscriptions import aware

SESSION: web.RequestKey[PortalSession] = web.RequestKey("portal_session", PortalSession)

# No script, no frame, no form that posts elsewhere; pages hold secrets and tenant data, so
# nothing is cached and nothing leaves in a Referer.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def pacific(value: datetime | None) -> str:
    if value is None:
        return "\u2013"
    return aware(value).astimezone(PACIFIC).strftime("%Y-%m-%d %H:%M:%S %Z")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor.api", "templates/portal"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["pacific"] = pacific
_env.globals["problem_lines"] = problem_lines


def page(request: web.Request, template: str, *, status: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    html = _env.get_template(template).render(session=request.get(SESSION), **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={**HEADERS, **(headers or {})})


def problem_page(request: web.Request, status: int, title: str,
                 detail: str | None = None) -> web.Response:
    return page(request, "problem.html.j2", status=status, title=title, detail=detail)


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs the result (a reload posts nothing)."""
    return web.Response(status=303, headers={**HEADERS, "Location": location})
