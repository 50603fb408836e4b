"""`/`: the status page a person reads at a glance.

Server-rendered with Jinja2 from the store (conditions and the ledger), refreshed by a meta
refresh; no JavaScript. What it shows is computed in `status_view`; this module loads the
data, renders the template and registers the route; its charts come from `charts`. The page
is served without authentication, so it shows nothing of any tenant: recent notifications
appear as time, severity, channel, delivery state and the conditions they were about (never a
recipient, a subscription's name or threshold, or a test); tenants' peak-forecast thresholds
appear only as a range per area, rounded outward, with how many tenants set it.
"""

from __future__ import annotations

from datetime import timedelta

import jinja2
from aiohttp import web

from monitor import ledger
from monitor.api.charts import THRESHOLDS, ThresholdCache, load_charts
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.status_view import NOTICE_KINDS, StatusView, build_view
from monitor.events import Condition, Kind
from monitor.source_health import current_health, enabled_sources
from monitor.store import conditions

REFRESH_SECONDS = 60
RECENT_NOTIFICATIONS = 10
# Forecasts and RA outlooks are published daily; three days back covers a missed publication.
_DAILY_LOOKBACK = timedelta(days=3)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor.api", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


async def load_view(request: web.Request) -> StatusView:
    rt = request.app[RUNTIME]
    now = rt.clock.now()
    async with rt.store.connect() as conn:
        open_now = await conditions.list_conditions(
            conn, open_only=True, kinds=(*NOTICE_KINDS, Kind.SCE_DR_EVENT), limit=200)
        recent: list[Condition] = []
        for kind in (Kind.CAISO_STATUS, Kind.CAISO_DEMAND):
            recent += await conditions.list_conditions(conn, kinds=(kind,), limit=1)
        recent += await conditions.list_conditions(
            conn, kinds=(Kind.CAISO_PEAK_FORECAST, Kind.CAISO_RA_OUTLOOK),
            since=now - _DAILY_LOOKBACK, limit=500)
        # Tests say nothing about the grid (and name the subscription they were sent for).
        entries = await ledger.list_entries(conn, limit=RECENT_NOTIFICATIONS,
                                            include_tests=False)
        counts = await ledger.count_by_state(conn)
    # The sources' health as /readyz reads it: the store and this process's own producers.
    health = await current_health(rt.store, rt.health)
    return build_view([*open_now, *health], recent, entries, counts, now, REFRESH_SECONDS,
                      sources=enabled_sources(rt.settings))


async def status_page(request: web.Request) -> web.Response:
    view = await load_view(request)
    charts = await load_charts(request.app[RUNTIME], request.app[THRESHOLDS])
    html = _env.get_template("status.html.j2").render(view=view, charts=charts)
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'; img-src 'self'"})


def setup(app: web.Application) -> None:
    app[THRESHOLDS] = ThresholdCache()
    app.router.add_get("/", status_page)
    app[SPEC].operation("GET", "/", summary="Status page (HTML)", tags=("status",), auth=None,
                        responses={200: {"type": "string"}}, content_type="text/html")
