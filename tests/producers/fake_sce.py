"""A real aiohttp server on 127.0.0.1 playing SCE's DR event site for producer tests.

It serves the JSON API (`/m.dr.website/resteasy/services/getLastUpdateTime` and
`getEventStore`, honouring repeated `categoryNames`) and both status pages from whatever events
the test last `show`ed; a category's last-update time moves only when its events change, as
the site's would. Either half can be made to fail. Every request is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from producers.sce_api import CATEGORIES
from tests.producers import sce_site
from tests.producers.sce_site import SiteEvent

API = "/m.dr.website/resteasy/services"
HTML = "/dr.website"


@dataclass(frozen=True)
class Seen:
    path: str
    query: list[tuple[str, str]]


class FakeSce:
    def __init__(self) -> None:
        self.events: list[SiteEvent] = []
        self.marks: dict[str, int] = dict.fromkeys(CATEGORIES, 1_000_000)
        self.as_of = datetime(2010, 1, 1)
        self.requests: list[Seen] = []
        self.api_status = 200
        self.api_body: bytes | None = None
        self.html_status = 200
        self.html_body: bytes | None = None
        self.app = web.Application()
        self.app.router.add_get(f"{API}/getLastUpdateTime", self._last_update)
        self.app.router.add_get(f"{API}/getEventStore", self._event_store)
        self.app.router.add_get(f"{HTML}/scepr-event-status.jsf", self._page)
        self.app.router.add_get(f"{HTML}/scepr-event-status-resi.jsf", self._page)
        self.app.router.add_get(f"{HTML}/scepr-event-listview.jsf", self._list_view)
        self.list_status = 200

    def show(self, events: Sequence[SiteEvent], at: datetime) -> None:
        """The site now lists `events` (as of local time `at`)."""
        before = self._rendered(self.events)
        after = self._rendered(events)
        stamp = int(at.timestamp() * 1000)
        for cat in CATEGORIES:
            if before.get(cat) != after.get(cat):
                self.marks[cat] = stamp
        self.events = list(events)
        self.as_of = at

    @staticmethod
    def _rendered(events: Sequence[SiteEvent]) -> dict[str, bytes]:
        out = {}
        for cat in CATEGORIES:
            in_cat = [ev for ev in events if ev.category == cat]
            out[cat] = json.dumps([repr(ev) for ev in in_cat]).encode()
        return out

    def api_calls(self, resource: str) -> list[Seen]:
        return [r for r in self.requests if r.path == f"{API}/{resource}"]

    def page_calls(self) -> list[Seen]:
        return [r for r in self.requests if r.path.startswith(HTML) and "listview" not in r.path]

    def list_calls(self) -> list[Seen]:
        return [r for r in self.requests if "listview" in r.path]

    def _record(self, request: web.Request) -> None:
        self.requests.append(Seen(request.path, list(request.query.items())))

    async def _last_update(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.api_status != 200 or self.api_body is not None:
            return web.Response(status=self.api_status, body=self.api_body or b"unavailable")
        asked = request.query.getall("category", [])
        return web.Response(body=sce_site.last_update(
            {c: m for c, m in self.marks.items() if c in asked}),
            content_type="application/json")

    async def _event_store(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.api_status != 200 or self.api_body is not None:
            return web.Response(status=self.api_status, body=self.api_body or b"unavailable")
        cats = request.query.getall("categoryNames", [])
        return web.Response(body=sce_site.event_store(self.events, self.marks, cats),
                            content_type="application/json")

    async def _list_view(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.list_status != 200:
            return web.Response(status=self.list_status, text="error")
        key = request.query.get("eventKey")
        ev = next((e for e in self.events if e.key == key), None)
        return web.Response(body=sce_site.list_view(ev), content_type="text/html")

    async def _page(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.html_status != 200 or self.html_body is not None:
            return web.Response(status=self.html_status, body=self.html_body or b"down",
                                content_type="text/html")
        klass = "RESIDENTIAL" if "resi" in request.path else "COMMERCIAL"
        return web.Response(body=sce_site.status_page(klass, self.events, self.as_of),
                            content_type="text/html")
