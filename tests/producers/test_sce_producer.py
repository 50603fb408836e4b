"""The SCE producer end to end: the engine polls a local server playing SCE's site through a
day, and the revisions published on the embedded bus tell its story.

2010-09-27 (docs/sources-sce.md section 6): CPP, CBP and DBP scheduled the day before, one
day-ahead CBP product withdrawn in the morning, then a CAISO transmission emergency at 15:16
(AP-I all districts to 16:31, SDP Base to 17:31 and Enhanced to 18:13), ends `TBD` until the
operators set them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from monitor import metrics
from monitor.attributes import DrEventAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings, SourcesSettings
from monitor.envelope import condition_from_event
from monitor.events import Condition, Status
from monitor.topics import HEALTH, SCE
from producers.catalog import build_sources
from producers.dr_events import DrProducer
from producers.engine import Engine, PollOutcome
from producers.http import HttpFetcher
from producers.sce_dr import NAME, SCHEDULE, SceDrEvents
from producers.sce_locations import ALL_SUBLAPS, sublaps_of_zips
from producers.sce_values import PACIFIC
from tests.producers import sce_site
from tests.producers.fake_sce import API, HTML, FakeSce
from tests.producers.sce_site import SiteEvent, episode_2010_09_27, episode_2011_09_21


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PACIFIC)


WITHDRAWN = SiteEvent("CBP", "COMMERCIAL", "CBP 4-8 DA", datetime(2010, 9, 27, 14, 0),
                      datetime(2010, 9, 27, 18, 0), "CBP-4-8-DA-20100927")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local("2009-01-01 00:00"))


@pytest.fixture
async def sce(aiohttp_server) -> AsyncIterator[tuple[FakeSce, str]]:  # type: ignore[no-untyped-def]
    fake = FakeSce()
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    yield fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fetcher(clock: ManualClock) -> AsyncIterator[HttpFetcher]:
    async with HttpFetcher(clock, user_agent="capmon-test/1 (ops@example.org)", timeout_s=5,
                           max_response_bytes=1_000_000) as f:
        yield f


class Day:
    """One engine, one bus, one fake site; `at(time, events)` shows the events and polls."""

    def __init__(self, fake: FakeSce, base: str, fetcher: HttpFetcher, clock: ManualClock,
                 start: str, api_retry_s: float = 600) -> None:
        self.fake, self.clock = fake, clock
        clock.set(local(start))
        self.events = SceDrEvents(base + API, base + HTML, api_retry_s=api_retry_s)
        self.bus = MemoryBus()
        self.engine = Engine([DrProducer(NAME, SCE, SCHEDULE, self.events)], fetcher, self.bus,
                             clock, stale_after_intervals=3, rng=random.Random(7))
        self.sub = self.bus.subscribe([SCE], group="test")

    async def at(self, when: str, events: list[SiteEvent] | None = None) -> PollOutcome:
        self.clock.set(local(when))
        if events is not None:
            self.fake.show(events, local(when).replace(tzinfo=None))
        return await self.engine.poll_once(NAME)

    async def published(self) -> list[Condition]:
        out = []
        while (msg := await self.sub.get(timeout=0.05)) is not None:
            out.append(condition_from_event(msg.event()))
            await self.sub.ack(msg)
        return out


def attrs(c: Condition) -> DrEventAttributes:
    assert isinstance(c.attributes, DrEventAttributes)
    return c.attributes


def channel(day: Day) -> str | None:
    return day.events.last_channel


def story(revisions: list[Condition]) -> list[tuple[str, str, str | None]]:
    return [(c.id.removeprefix("sce.dr:"), c.status.value,
             c.window.end.astimezone(PACIFIC).strftime("%H:%M") if c.window.end else None)
            for c in revisions]


def episode(at: str) -> list[SiteEvent]:
    events = episode_2010_09_27(at)
    if local(at) < local("2010-09-27 09:00"):
        events.append(WITHDRAWN)
    return events


async def test_the_day_schedule_start_tbd_resolved_end(sce, fetcher, clock) -> None:  # type: ignore[no-untyped-def]
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2010-09-26 18:30")

    assert await day.at("2010-09-26 18:30", episode("2010-09-26 18:30")) is PollOutcome.OK
    assert sorted(story(await day.published())) == [
        ("CBP-1-4-DA-20100927", "scheduled", "18:00"),
        ("CBP-2-6-DA-20100927", "scheduled", "18:00"),
        ("CBP-4-8-DA-20100927", "scheduled", "18:00"),
        ("DBP-DA-20100927", "scheduled", "20:00"),
        ("SAI-20100927-1", "scheduled", "18:00")]
    # The first poll asks for every category; later ones only for those whose time moved.
    (first,) = fake.api_calls("getEventStore")
    assert len([v for k, v in first.query if k == "categoryNames"]) == 16

    # Nothing changed overnight: one cheap check, no getEventStore, nothing published.
    await day.at("2010-09-27 06:00")
    assert len(fake.api_calls("getEventStore")) == 1 and await day.published() == []

    # The CBP 4-8 DA event is withdrawn before its start: cancelled.
    await day.at("2010-09-27 09:00", episode("2010-09-27 09:00"))
    assert story(await day.published()) == [("CBP-4-8-DA-20100927", "cancelled", "18:00")]
    asked = [v for k, v in fake.api_calls("getEventStore")[-1].query if k == "categoryNames"]
    assert asked == ["CBP_COMMERCIAL_SCHEDULED"]

    await day.at("2010-09-27 12:00", episode("2010-09-27 12:00"))
    assert story(await day.published()) == [("DBP-DA-20100927", "active", "20:00")]
    await day.at("2010-09-27 14:00", episode("2010-09-27 14:00"))
    assert sorted(story(await day.published())) == [
        ("CBP-1-4-DA-20100927", "active", "18:00"), ("CBP-2-6-DA-20100927", "active", "18:00"),
        ("SAI-20100927-1", "active", "18:00")]

    # 15:16, the transmission emergency: three interruptible events, ends TBD.
    await day.at("2010-09-27 15:17", episode("2010-09-27 15:17"))
    emergency = await day.published()
    assert sorted(story(emergency)) == [("API-20100927-1516", "active", None),
                                        ("APS-20100927-1516", "active", None),
                                        ("APS-E-20100927-1516", "active", None)]
    api = next(c for c in emergency if c.id.endswith("API-20100927-1516"))
    assert api.severity.value == "emergency" and "SCLD" in api.regions

    # AP-I's end becomes known: an updated revision, still active.
    await day.at("2010-09-27 16:20", episode("2010-09-27 16:20"))
    (updated,) = await day.published()
    assert story([updated]) == [("API-20100927-1516", "active", "16:31")]
    assert updated.revision > api.revision and updated.window.start == api.window.start

    # AP-I leaves the list after its end: ended at the end it had announced.
    await day.at("2010-09-27 16:32", episode("2010-09-27 16:32"))
    (ended,) = await day.published()
    assert story([ended]) == [("API-20100927-1516", "ended", "16:31")]
    assert isinstance(ended.attributes, DrEventAttributes)
    assert not ended.attributes.end_inferred

    # SDP's estimated ends appear, then each product ends at its own time.
    await day.at("2010-09-27 16:45", episode("2010-09-27 16:45"))
    assert sorted(story(await day.published())) == [("APS-20100927-1516", "active", "17:31"),
                                                    ("APS-E-20100927-1516", "active", "18:13")]
    await day.at("2010-09-27 17:32", episode("2010-09-27 17:32"))
    assert story(await day.published()) == [("APS-20100927-1516", "ended", "17:31")]
    await day.at("2010-09-27 18:01", episode("2010-09-27 18:01"))
    assert sorted(story(await day.published())) == [
        ("CBP-1-4-DA-20100927", "ended", "18:00"), ("CBP-2-6-DA-20100927", "ended", "18:00"),
        ("SAI-20100927-1", "ended", "18:00")]
    await day.at("2010-09-27 18:14", episode("2010-09-27 18:14"))
    assert story(await day.published()) == [("APS-E-20100927-1516", "ended", "18:13")]
    await day.at("2010-09-27 20:01", episode("2010-09-27 20:01"))
    assert story(await day.published()) == [("DBP-DA-20100927", "ended", "20:00")]
    assert fake.page_calls() == []  # the API answered all day


async def test_an_end_that_stays_tbd_ends_when_the_event_leaves(sce, fetcher, clock) -> None:  # type: ignore[no-untyped-def]
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2009-09-30 08:53")
    sdp = SiteEvent("SDP", "COMMERCIAL", "APS", datetime(2009, 9, 30, 8, 53), None,
                    "APS-20090930-0853", location_type="District", active=True)
    await day.at("2009-09-30 08:53", [sdp])
    await day.at("2009-09-30 08:55", [])
    active, ended = await day.published()
    assert (active.status, active.window.end) == (Status.ACTIVE, None)
    assert ended.status is Status.ENDED
    assert ended.window.end == local("2009-09-30 08:55")
    assert isinstance(ended.attributes, DrEventAttributes) and ended.attributes.end_inferred


async def test_api_down_falls_back_to_pages_without_false_transitions(  # type: ignore[no-untyped-def]
        sce, fetcher, clock) -> None:
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2010-09-27 15:17", api_retry_s=1800)
    await day.at("2010-09-27 15:17", episode("2010-09-27 15:17"))
    by_api = {c.id: c for c in await day.published()}
    assert len(by_api) == 7

    failures = metrics.FETCH_ERRORS.labels(f"{NAME}-api", "server")._value.get()
    fake.api_status = 503
    assert await day.at("2010-09-27 15:20") is PollOutcome.OK
    assert metrics.FETCH_ERRORS.labels(f"{NAME}-api", "server")._value.get() == failures + 1
    assert day.events.last_channel == "html"
    by_pages = {c.id: c for c in await day.published()}
    # The same events under the same ids, same status and window; only the channel moved.
    assert set(by_pages) <= set(by_api)
    for cid, c in by_pages.items():
        assert (c.status, c.window, c.regions) == (by_api[cid].status, by_api[cid].window,
                                                   by_api[cid].regions)
        assert isinstance(c.attributes, DrEventAttributes)
        assert c.attributes.channel == "html"
        assert c.attributes.product == attrs(by_api[cid]).product

    # While the pages are read, the API is left alone until its retry time (30 min).
    calls = len(fake.api_calls("getLastUpdateTime"))
    await day.at("2010-09-27 15:40")
    assert len(fake.api_calls("getLastUpdateTime")) == calls
    assert await day.published() == []
    # Retried at 16:20, still down: the pages tell that AP-I's end became known.
    await day.at("2010-09-27 16:20", episode("2010-09-27 16:20"))
    assert len(fake.api_calls("getLastUpdateTime")) == calls + 1
    assert story(await day.published()) == [("API-20100927-1516", "active", "16:31")]

    # Back on the API after the next retry time: every category is read afresh.
    fake.api_status = 200
    await day.at("2010-09-27 16:51", episode("2010-09-27 16:51"))
    assert channel(day) == "json"
    asked = [v for k, v in fake.api_calls("getEventStore")[-1].query if k == "categoryNames"]
    assert len(asked) == 16
    back = {c.id.removeprefix("sce.dr:"): c for c in await day.published()}
    assert story([back["API-20100927-1516"]]) == [("API-20100927-1516", "ended", "16:31")]
    assert story([back["APS-20100927-1516"]]) == [("APS-20100927-1516", "active", "17:31")]
    # (AP-I's ended revision closes the last one published, which came from the pages.)
    assert {attrs(c).channel for k, c in back.items() if k != "API-20100927-1516"} == {"json"}


async def test_when_both_halves_fail_nothing_is_announced(sce, fetcher, clock) -> None:  # type: ignore[no-untyped-def]
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2010-09-27 15:17")
    await day.at("2010-09-27 15:17", episode("2010-09-27 15:17"))
    assert len(await day.published()) == 7

    fake.api_body = b"<html><body>Please log in</body></html>"  # 200, but not JSON
    fake.html_body = b"<html><body><h1>Site maintenance</h1></body></html>"
    errors = metrics.PARSE_ERRORS.labels(NAME, "shape")._value.get()
    assert await day.at("2010-09-27 15:18") is PollOutcome.PARSE_ERROR
    assert metrics.PARSE_ERRORS.labels(NAME, "shape")._value.get() == errors + 1
    fake.html_body, fake.html_status = None, 502
    assert await day.at("2010-09-27 15:19") is PollOutcome.FETCH_ERROR
    assert await day.published() == []  # no event ended or was cancelled

    # A page that lost a panel it had before is a changed page, not the end of its events.
    fake.api_body = None
    fake.api_status = 503
    fake.html_status = 200
    day.events.api_retry = timedelta(hours=1)
    assert await day.at("2010-09-27 15:20") is PollOutcome.OK
    await day.published()
    real = episode("2010-09-27 15:21")
    body = sce_site.status_page("COMMERCIAL", real, datetime(2010, 9, 27, 15, 21)).decode()
    start = body.index('<div class="rich-panel" id="panelAPI">')
    end = body.index('<div class="rich-panel" id="panelCBP">')
    fake.html_body = (body[:start] + body[end:]).encode()  # AP-I's panel is gone
    assert await day.at("2010-09-27 15:21") is PollOutcome.PARSE_ERROR
    assert await day.published() == []
    health = day.bus.subscribe([HEALTH], group="h")
    assert await health.get(timeout=0.05) is None  # not stale yet: 3 intervals


def test_produce_role_builds_the_sce_source_from_settings() -> None:
    settings = Settings(sources=SourcesSettings(
        sce_api_url="http://127.0.0.1:1/api", sce_html_url="http://127.0.0.1:1/site",
        sce_mode="html", enabled=("sce-dr",)))
    (source,) = build_sources(settings)
    assert source.name == "sce-dr" and source.topic == SCE
    assert source.schedule.interval_s == 60
    assert isinstance(source, DrProducer) and isinstance(source.events, SceDrEvents)
    assert source.events.mode == "html" and source.events.api_url == "http://127.0.0.1:1/api"


async def test_html_only_mode_never_calls_the_api(sce, fetcher, clock) -> None:  # type: ignore[no-untyped-def]
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2011-09-21 13:50")
    day.events.mode = "html"
    await day.at("2011-09-21 13:50", episode_2011_09_21())
    assert fake.api_calls("getLastUpdateTime") == []
    assert len(fake.page_calls()) == 2
    published = await day.published()
    assert len(published) == 5 and {c.status for c in published} == {Status.ACTIVE,
                                                                       Status.SCHEDULED}


async def test_a_category_without_an_update_time_is_read_every_poll(  # type: ignore[no-untyped-def]
        sce, fetcher, clock) -> None:
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2011-09-21 13:50")
    await day.at("2011-09-21 13:50", episode_2011_09_21())
    del fake.marks["BIP_COMMERCIAL_SCHEDULED"]
    await day.at("2011-09-21 13:51")
    asked = [v for k, v in fake.api_calls("getEventStore")[-1].query if k == "categoryNames"]
    assert asked == ["BIP_COMMERCIAL_SCHEDULED"]
    assert len(fake.api_calls("getEventStore")) == 2
    assert len(await day.published()) == 5  # and nothing changed, so nothing republished


async def test_pages_place_a_localized_event_by_its_list_view(sce, fetcher, clock) -> None:  # type: ignore[no-untyped-def]
    fake, base = sce
    day = Day(fake, base, fetcher, clock, "2010-07-28 13:00")
    day.events.mode = "html"
    (pechanga,) = sce_site.episode_2010_07_28()
    fake.list_status = 503
    failures = metrics.FETCH_ERRORS.labels(f"{NAME}-list", "server")._value.get()
    await day.at("2010-07-28 13:00", [pechanga])
    (broad,) = await day.published()
    # The list view failed: the whole territory for now, never nowhere.
    assert not attrs(broad).location_resolved and attrs(broad).sublaps == ALL_SUBLAPS
    assert metrics.FETCH_ERRORS.labels(f"{NAME}-list", "server")._value.get() == failures + 1

    fake.list_status = 200
    await day.at("2010-07-28 13:01")
    (placed,) = await day.published()
    assert placed.id == broad.id and attrs(placed).location_resolved
    assert attrs(placed).zips == ("92590", "92592")
    assert set(attrs(placed).sublaps) == sublaps_of_zips(["92590", "92592"])
    assert set(placed.regions) == {"SCE-TAC", *attrs(placed).sublaps, "92590", "92592"}

    # Read once per event: later polls use what it said.
    await day.at("2010-07-28 13:02")
    assert len(fake.list_calls()) == 2 and await day.published() == []
    await day.at("2010-07-28 13:26", [])
    assert story(await day.published()) == [("APS-E-20100728-8347", "ended", "13:25")]
