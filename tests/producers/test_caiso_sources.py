"""Every CAISO source through the engine against a local server that plays CAISO's URLs with
the real fixture bodies: URLs, cache-buster, OASIS query, publish-time gating and spacing."""

from __future__ import annotations

import asyncio
import io
import itertools
import random
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import structlog
from aiohttp.test_utils import TestServer

from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings, SourcesSettings
from monitor.errors import ConfigError
from monitor.events import Status
from monitor.topics import CAISO, HEALTH
from producers.caiso_common import PACIFIC
from producers.caiso_demand import DemandSource
from producers.caiso_flex import FlexSource
from producers.caiso_oasis import OasisSource
from producers.caiso_ra import RaOutlookSource
from producers.caiso_stats import StatsSource
from producers.catalog import build_sources
from producers.engine import Engine, PollOutcome
from producers.health import health_id
from producers.http import HttpFetcher
from tests.producers.fake_caiso import FakeCaiso, Reply
from tests.producers.helpers import CAISO_FIXTURES as F
from tests.producers.helpers import NEW, demand_file, drain, full_day

FLEX = "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"
OASIS = "/oasisapi/SingleZip"


def pt(*args: int) -> datetime:
    return datetime(*args, tzinfo=PACIFIC).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
async def served(aiohttp_server) -> AsyncIterator[tuple[FakeCaiso, TestServer, ManualClock]]:  # type: ignore[no-untyped-def]
    clock = ManualClock(pt(2025, 1, 27, 9, 30), auto_advance=True)
    fake = FakeCaiso(clock)
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    yield fake, server, clock


def zipped(name: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, body)
    return buf.getvalue()


async def test_outlook_and_flex_sources_publish_through_the_engine(served) -> None:  # type: ignore[no-untyped-def]
    fake, server, clock = served
    clock.set(pt(2026, 3, 11, 17, 1, 30))
    base = str(server.make_url("/outlook"))
    fake.script("/outlook/current/stats.txt", Reply(
        body=b'{"slotDate":"3/11/2026 17:00","gridstatus":["Normal"],"Current_reserve":"3,100"}'))
    fake.script("/outlook/current/demand.csv", Reply(body=demand_file(NEW, full_day(17 * 60))))
    fake.script("/outlook/current/rtm_forecast_7day.csv", Reply(
        body=(F / "outlook" / "history_20260311_rtm_forecast_7day.csv").read_bytes()))
    fake.script(FLEX, Reply(body=(F / "flexalert" / "inactive_2026-04-21.json").read_bytes(),
                            etag='"f1"', content_type="application/json"))
    sources = [StatsSource(base), DemandSource(base), RaOutlookSource(base),
               FlexSource(str(server.make_url(FLEX)))]
    bus = MemoryBus()
    async with HttpFetcher(clock, user_agent="capmon-test", timeout_s=5,
                           max_response_bytes=1_000_000) as fetcher:
        engine = Engine(sources, fetcher, bus, clock, rng=random.Random(1))
        for s in sources:
            assert await engine.poll_once(s.name) is PollOutcome.OK
        assert await engine.poll_once("caiso-flex") is PollOutcome.UNCHANGED  # 304 on the ETag
    ids = [c.id for c in await drain(bus, CAISO)]
    assert "caiso.status" in ids and "caiso.demand:2026-03-11" in ids
    assert "caiso.ra-margin:2026-03-17" in ids
    for path in ("/outlook/current/stats.txt", "/outlook/current/demand.csv"):
        assert fake.seen(path)[0].query["_"] == str(int(clock.now().timestamp()))


WHOLE_AT_17 = demand_file(NEW, full_day(17 * 60))


@pytest.mark.parametrize(("later", "reason"), [
    # The body cut inside the 17:00 reading (21 of 21020 MW), then at the line before it.
    (WHOLE_AT_17[:WHOLE_AT_17.index(b"17:00,30017,29017,21") + 20], "truncated"),
    (WHOLE_AT_17[:WHOLE_AT_17.index(b"17:00,")], "truncated"),
    # The same whole file, still served 20 minutes on: its 17:00 reading is not current.
    (WHOLE_AT_17, "stale"),
])
async def test_a_cut_or_stale_demand_file_reaches_the_operator_as_source_health(  # type: ignore[no-untyped-def]
        served, later: bytes, reason: str) -> None:
    fake, server, clock = served
    clock.set(pt(2026, 3, 11, 17, 1, 30))
    fake.script("/outlook/current/demand.csv", Reply(body=WHOLE_AT_17), Reply(body=later))
    bus = MemoryBus()
    async with HttpFetcher(clock, user_agent="capmon-test", timeout_s=5,
                           max_response_bytes=1_000_000) as fetcher:
        engine = Engine([DemandSource(str(server.make_url("/outlook")))], fetcher, bus, clock,
                        stale_after_intervals=3, rng=random.Random(1))
        assert await engine.poll_once("caiso-demand") is PollOutcome.OK
        for minutes in (20, 25):
            clock.set(pt(2026, 3, 11, 17, minutes, 30))
            assert await engine.poll_once("caiso-demand") is PollOutcome.PARSE_ERROR
    [demand] = await drain(bus, CAISO)
    assert demand.attributes.current_mw == 21020  # type: ignore[attr-defined]
    [health] = await drain(bus, HEALTH)
    assert health.id == health_id("caiso-demand") and health.status is Status.ACTIVE
    assert health.attributes.reason == reason  # type: ignore[attr-defined]


async def test_oasis_source_queries_polls_after_publication_and_spaces_requests(served) -> None:  # type: ignore[no-untyped-def]
    fake, server, clock = served
    csv = (F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv").read_bytes()
    fake.script(OASIS, Reply(body=zipped(
        "20250127_20250129_SLD_FCST_DAM_20250127_09_12_13_v1.csv", csv),
        content_type="application/x-zip-compressed"))
    source = OasisSource(str(server.make_url(OASIS)))
    bus = MemoryBus()
    async with HttpFetcher(clock, user_agent="capmon-test", timeout_s=5,
                           max_response_bytes=5_000_000) as fetcher:
        engine = Engine([source], fetcher, bus, clock)
        assert await engine.poll_once("caiso-oasis") is PollOutcome.OK
        requests = fake.seen(OASIS)
        assert [r.query["market_run_id"] for r in requests] == ["DAM", "2DA", "7DA"]
        assert requests[0].query["startdatetime"] == "20250127T08:00-0000"
        assert requests[0].query["queryname"] == "SLD_FCST"
        assert all((b.at - a.at).total_seconds() >= 5 for a, b in itertools.pairwise(requests))
        # The file holds no DAM for 01-28: before noon the source asks again next poll ...
        clock.advance(600)
        assert await engine.poll_once("caiso-oasis") is PollOutcome.OK
        assert len(fake.seen(OASIS)) == 6
        # ... and after noon it gives up until tomorrow's publication.
        clock.set(pt(2025, 1, 27, 12, 30))
        assert await engine.poll_once("caiso-oasis") is PollOutcome.UNCHANGED
        assert len(fake.seen(OASIS)) == 6
    published = await drain(bus, CAISO)
    dam = next(c for c in published if c.id == "caiso.peak_forecast:CA ISO-TAC:2025-01-27")
    assert dam.attributes.peak_mw == 27945.29 and dam.status is Status.ACTIVE  # type: ignore[attr-defined]
    assert dam.attributes.vintage == pt(2025, 1, 27, 9, 12, 13)  # type: ignore[attr-defined]
    assert len(published) == len({c.id for c in published})  # unchanged: not republished


async def test_oasis_no_data_error_is_not_a_failure_but_other_errors_are(served) -> None:  # type: ignore[no-untyped-def]
    fake, server, clock = served
    xml = (b'<m:OASISReport xmlns:m="http://www.caiso.com/soa/OASISReport_v1.xsd"><m:ERROR>'
           b"<m:ERR_CODE>%s</m:ERR_CODE><m:ERR_DESC>x</m:ERR_DESC></m:ERROR></m:OASISReport>")
    fake.script(OASIS, Reply(body=zipped("INVALID_REQUEST.xml", xml % b"1000")),
                Reply(body=zipped("INVALID_REQUEST.xml", xml % b"1000")),
                Reply(body=zipped("INVALID_REQUEST.xml", xml % b"1000")),
                Reply(body=zipped("INVALID_REQUEST.xml", xml % b"1010")))
    source = OasisSource(str(server.make_url(OASIS)))
    async with HttpFetcher(clock, user_agent="capmon-test", timeout_s=5,
                           max_response_bytes=5_000_000) as fetcher:
        engine = Engine([source], fetcher, MemoryBus(), clock)
        assert await engine.poll_once("caiso-oasis") is PollOutcome.OK
        clock.advance(600)
        assert await engine.poll_once("caiso-oasis") is PollOutcome.PARSE_ERROR


async def test_oasis_source_publishes_no_peak_for_a_partial_day_and_logs_it(served) -> None:  # type: ignore[no-untyped-def]
    fake, server, clock = served
    clock.set(pt(2025, 2, 21, 9, 30))
    cut = (F / "oasis" / "sld_fcst_7da_utc_20250220_20250222.derived.csv").read_bytes()
    fake.script(OASIS, *[Reply(body=zipped(
        "20250220_20250222_SLD_FCST_7DA_20250221_01_09_58_v1.csv", cut),
        content_type="application/x-zip-compressed")] * 3)
    source = OasisSource(str(server.make_url(OASIS)))
    bus = MemoryBus()
    async with HttpFetcher(clock, user_agent="capmon-test", timeout_s=5,
                           max_response_bytes=5_000_000) as fetcher:
        engine = Engine([source], fetcher, bus, clock)
        with structlog.testing.capture_logs() as logs:
            assert await engine.poll_once("caiso-oasis") is PollOutcome.OK
    published = await drain(bus, CAISO)
    assert {c.id.rsplit(":", 1)[1] for c in published} == {"2025-02-20"}
    partial = [e for e in logs if e["event"] == "oasis_partial_days"]
    assert [e["market"] for e in partial] == ["DAM", "2DA", "7DA"]
    assert partial[0]["count"] == 12 and "7DA 2025-02-21 HE1-16" in partial[0]["partial"]


def test_catalog_builds_every_caiso_source_and_rejects_unknown_names() -> None:
    names = {s.name for s in build_sources(Settings())}
    assert names >= {"caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis",
                     "caiso-ra-outlook"}
    only = Settings(sources=SourcesSettings(enabled=("caiso-flex", "caiso-notices")))
    assert [s.name for s in build_sources(only)] == ["caiso-flex"]
    with pytest.raises(ConfigError, match="caiso-nope"):
        build_sources(Settings(sources=SourcesSettings(enabled=("caiso-nope",))))


async def test_runner_polls_until_stopped(served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from monitor.runtime import close_runtime, open_runtime
    from producers.runner import run

    fake, server, clock = served
    fake.script(FLEX, Reply(body=(F / "flexalert" / "inactive_2026-04-21.json").read_bytes()))
    settings = Settings(
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}"},
        sources=SourcesSettings(caiso_flex_url=str(server.make_url(FLEX)),
                                enabled=("caiso-flex",)))
    rt = await open_runtime(settings, clock=clock, bus=MemoryBus())
    stop = asyncio.Event()
    task = asyncio.create_task(run(rt, stop))
    try:
        await fake.wait_for(lambda: len(fake.seen(FLEX)) >= 3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await close_runtime(rt)
    assert fake.seen(FLEX)[0].headers["User-Agent"].startswith("capmon/")
