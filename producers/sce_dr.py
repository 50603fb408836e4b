"""The SCE demand-response source: JSON API first, HTML status pages as the fallback.

Every poll (60 s) asks the API's `getLastUpdateTime` for all 16 categories, a few hundred
bytes, and calls `getEventStore` only for the categories whose time moved (all of them on the
first poll). The events of categories that did not move are kept from earlier polls, so each
poll still yields SCE's complete list and `DrProducer` can tell which events disappeared.

If the API fails (unreachable, an error status, or an answer out of shape), the source reads
the Residential and Commercial status pages instead and tries the API again after
`sce_api_retry_s`. The pages carry less than the API (no uuid, no dispatch location for SDP,
no product for commercial SDP), so an event the API described before keeps its id and fills
those gaps from what the API said: falling back mid-event is not a new event. If the pages fail
too, the poll fails (and the engine counts it); nothing is ever read as "no events".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

import structlog

from monitor import metrics
from monitor.config import Settings
from monitor.errors import FetchError, ParseError, SourceError
from monitor.topics import SCE
from producers.dr_events import DrEvent, DrProducer, Snapshot, site_key
from producers.sce_api import CATEGORIES, parse_event_store, parse_last_update
from producers.sce_html import StatusPage, parse_list_view, parse_status_page
from producers.sce_locations import resolve
from producers.source import Fetcher, Schedule

log = structlog.get_logger(__name__)

NAME = "sce-dr"
SCHEDULE = Schedule(interval_s=60.0, offset_s=0.0, jitter_s=5.0)
PAGES: tuple[tuple[str, Literal["residential", "commercial"]], ...] = (
    ("scepr-event-status-resi.jsf", "residential"),
    ("scepr-event-status.jsf", "commercial"),
)
# Bounds the requests of one poll when a burst lists many localized events (26 SDP
# substations on 2011-09-08); the rest are read on the following polls.
MAX_LIST_VIEWS_PER_POLL = 30
_JSON = {"Accept": "application/json"}
_HTML = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}

Mode = Literal["auto", "api", "html"]


class SceDrEvents:
    """`DrEventSource` for SCE's DR event status site."""

    utility = "SCE"

    def __init__(self, api_url: str, html_url: str, *, mode: Mode = "auto",
                 api_retry_s: float = 600.0, name: str = NAME) -> None:
        self.api_url = api_url.rstrip("/")
        self.html_url = html_url.rstrip("/")
        self.mode = mode
        self.api_retry = timedelta(seconds=api_retry_s)
        self.name = name
        self._marks: dict[str, int] = {}
        self._events: dict[str, tuple[DrEvent, ...]] = {}
        self._api_retry_at: datetime | None = None
        self._known: tuple[DrEvent, ...] = ()  # the API's last complete list
        self._pages: dict[str, StatusPage] = {}
        self._lists: dict[str, tuple[str, ...]] = {}  # list-view URL -> ZIP codes
        self.last_channel: Literal["json", "html"] | None = None

    # -- one snapshot --------------------------------------------------------------------------

    async def snapshot(self, fetch: Fetcher, now: datetime) -> Snapshot:
        api_error: SourceError | None = None
        if self.mode != "html" and (self._api_retry_at is None or now >= self._api_retry_at):
            try:
                snap = await self._from_api(fetch)
            except (FetchError, ParseError) as exc:
                if self.mode == "api":
                    raise
                api_error = exc
                self._api_failed(exc, now)
            else:
                self._api_retry_at = None
                self.last_channel = "json"
                return snap
        try:
            snap = await self._from_pages(fetch)
        except FetchError as exc:
            if api_error is None:
                raise
            raise FetchError(f"API: {api_error}; pages: {exc}", reason=exc.reason,
                             retriable=exc.retriable, retry_after=exc.retry_after) from exc
        except ParseError as exc:
            if api_error is None:
                raise
            raise ParseError(f"API: {api_error}; pages: {exc}", reason=exc.reason,
                             retriable=exc.retriable) from exc
        self.last_channel = "html"
        return snap

    def _api_failed(self, exc: SourceError, now: datetime) -> None:
        counter = metrics.PARSE_ERRORS if isinstance(exc, ParseError) else metrics.FETCH_ERRORS
        counter.labels(f"{self.name}-api", exc.reason).inc()
        log.warning("sce_api_failed_using_pages", source=self.name, reason=exc.reason,
                    error=str(exc)[:300], retry_api_after_s=self.api_retry.total_seconds())
        # What the API said is stale once we stop reading it: start over when it is back.
        self._marks.clear()
        self._events.clear()
        self._api_retry_at = now + self.api_retry

    # -- the JSON API --------------------------------------------------------------------------

    def _url(self, resource: str, params: list[tuple[str, str]]) -> str:
        # Repeated parameters (category=A&category=B), which a params mapping cannot express.
        return f"{self.api_url}/{resource}?{urlencode(params)}"

    async def _from_api(self, fetch: Fetcher) -> Snapshot:
        check = await fetch.get(self._url("getLastUpdateTime",
                                          [("category", c) for c in CATEGORIES]), headers=_JSON)
        marks = parse_last_update(check.body)
        # A category the check does not report is read every poll: without its time there
        # is no telling whether it changed.
        changed = [c for c in CATEGORIES
                   if c not in self._events or c not in marks or marks[c] != self._marks.get(c)]
        if changed:
            url = self._url("getEventStore",
                            [("rtp", "false"), *(("categoryNames", c) for c in changed)])
            resp = await fetch.get(url, headers=_JSON)
            store = parse_event_store(resp.body, url=f"{self.api_url}/getEventStore")
            for cat in changed:
                # The mapped JSON leaves out empty lists: a category asked for and absent
                # from a well-formed answer has no events.
                self._events[cat] = store.events.get(cat, ())
                mark = store.last_update.get(cat, marks.get(cat))
                if mark is None:
                    self._marks.pop(cat, None)
                else:
                    self._marks[cat] = mark
            log.info("sce_api_categories_fetched", source=self.name, categories=len(changed))
        events = tuple(ev for cat in CATEGORIES for ev in self._events.get(cat, ()))
        self._known = events
        return Snapshot(events=events, url=f"{self.api_url}/getEventStore")

    # -- the HTML pages ------------------------------------------------------------------------

    async def _from_pages(self, fetch: Fetcher) -> Snapshot:
        events: list[DrEvent] = []
        for page, klass in PAGES:
            url = f"{self.html_url}/{page}"
            resp = await fetch.get(url, headers=_HTML, conditional=url in self._pages)
            if resp.not_modified and url in self._pages:
                parsed = self._pages[url]
            else:
                if resp.not_modified:
                    resp = await fetch.get(url, headers=_HTML)
                parsed = parse_status_page(resp.body, url=url, customer_class=klass)
                previous = self._pages.get(url)
                if previous is not None and not previous.programs <= parsed.programs:
                    gone = ", ".join(sorted(previous.programs - parsed.programs))
                    # A panel that vanished is a changed page, not the end of its events.
                    raise ParseError(f"{page}: panel(s) {gone} no longer found",
                                     reason="shape")
                self._pages[url] = parsed
            events.extend(self._matched(ev) for ev in parsed.events)
        placed = await self._placed(fetch, events)
        return Snapshot(events=tuple(placed), url=f"{self.html_url}/{PAGES[1][0]}")

    async def _placed(self, fetch: Fetcher, events: list[DrEvent]) -> list[DrEvent]:
        """Events the page gives no location for (SDP panels), placed by their list view.

        Each list view is read once per event and cached while the event is listed. One that
        cannot be read leaves its event covering the whole territory for this poll (a broad
        alert, never a missed one) and is tried again next poll.
        """
        wanted = {ev.detail_url for ev in events
                  if ev.location_type is None and not ev.location_resolved and ev.detail_url}
        self._lists = {u: z for u, z in self._lists.items() if u in wanted}
        for url in sorted(wanted - set(self._lists))[:MAX_LIST_VIEWS_PER_POLL]:
            try:
                resp = await fetch.get(url, headers=_HTML)
                self._lists[url] = parse_list_view(resp.body)
            except (FetchError, ParseError) as exc:
                counter = (metrics.PARSE_ERRORS if isinstance(exc, ParseError)
                           else metrics.FETCH_ERRORS)
                counter.labels(f"{self.name}-list", exc.reason).inc()
                log.warning("sce_list_view_failed", source=self.name, reason=exc.reason,
                            error=str(exc)[:200])
        out = []
        for ev in events:
            zips = self._lists.get(ev.detail_url or "") if ev.location_type is None else None
            if zips:
                geo = resolve(None, (), zips)
                ev = replace(ev, zips=geo.zips, sublaps=geo.sublaps, location_resolved=True)
            out.append(ev)
        return out

    def _matched(self, ev: DrEvent) -> DrEvent:
        """The page's event, with the id and details the API gave the same event."""
        candidates = [k for k in self._known if _same_event(k, ev)]
        if len(candidates) > 1:
            candidates = [k for k in candidates if k.end == ev.end] or candidates
        if len(candidates) != 1:
            return ev
        known = candidates[0]
        return replace(
            ev,
            key=site_key(known),
            event_key=ev.event_key or known.event_key,
            uuid=known.uuid,
            product=ev.product or known.product,
            location_type=ev.location_type or known.location_type,
            locations=ev.locations or known.locations,
            blocks=ev.blocks or known.blocks,
            sublaps=known.sublaps if not ev.location_resolved else ev.sublaps,
            zips=ev.zips or known.zips,
            location_resolved=ev.location_resolved or known.location_resolved,
            issued_at=known.issued_at,
            aggregators=known.aggregators,
            test_event=known.test_event,
        )


def _same_event(known: DrEvent, ev: DrEvent) -> bool:
    if ev.event_key and known.event_key:
        return ev.event_key == known.event_key
    return (known.program == ev.program and known.customer_class == ev.customer_class
            and known.start == ev.start
            and (ev.product is None or ev.product == known.product)
            and (not ev.blocks or ev.blocks == known.blocks))


def sce_dr_source(settings: Settings) -> DrProducer:
    """The engine source for SCE, configured from settings.sources."""
    s = settings.sources
    events = SceDrEvents(s.sce_api_url, s.sce_html_url, mode=s.sce_mode,
                         api_retry_s=s.sce_api_retry_s)
    return DrProducer(NAME, SCE, SCHEDULE, events)

