"""The tenant portal at /portal: a CCA's administrator signs in with the tenant's API key and
manages its subscriptions and reads its delivery log in the browser, without curl.

Server-rendered (Jinja2, autoescaped), no JavaScript. A sub-application, so that its session
and CSRF checks (`sessions.session_middleware`) stand in front of every portal route and of
nothing else. It is HTML for people, not part of the JSON API: its routes are deliberately
left out of /openapi.json (schemathesis would otherwise post forms it cannot sign in for).
"""

from __future__ import annotations

from aiohttp import web

from monitor.api.keys import RUNTIME
from monitor.api.portal import routes, sessions, silences


def setup(app: web.Application) -> None:
    portal = web.Application(middlewares=[sessions.session_middleware])
    portal[RUNTIME] = app[RUNTIME]
    # The route tables name whole paths (what a browser sees); the sub-application is
    # mounted at the prefix, so each is added without it.
    for table in (sessions.routes, routes.routes, silences.routes):
        for route in table:
            assert isinstance(route, web.RouteDef)
            portal.router.add_route(route.method, route.path.removeprefix(sessions.PATH),
                                    route.handler)
    # Nothing is added to app[SPEC]: these are pages for people, not operations of the JSON
    # API, and a generator posting to them without a session would only test the sign-in.
    app.add_subapp(sessions.PATH, portal)
