"""The polling engine against a real local server playing CAISO URLs.

The source here is deliberately tiny (a JSON list of alerts) so these tests pin the engine:
change detection, conditional requests and the cache-buster, disappearance, size cap, backoff,
Retry-After and 429, staleness -> source.health and recovery, minimum spacing.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.test_utils import TestServer
from yarl import URL

from monitor import metrics
from monitor.attributes import NoticeAttributes, SourceHealthAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.envelope import condition_from_event
from monitor.errors import FetchError, ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.source_health import HealthBoard
from monitor.topics import CAISO, HEALTH
from producers.engine import Engine, PollOutcome, backoff_delay, next_slot
from producers.health import health_id
from producers.http import HttpFetcher, connection_error
from producers.source import Fetcher, PollResult, Schedule
from tests.producers.fake_caiso import FakeCaiso, Reply
from tests.producers.helpers import DownOnceBus

PATH = "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"
START = datetime(2022, 9, 6, 16, 0, tzinfo=UTC)


@dataclass
class AlertsSource:
    """A minimal complete-listing source: body `[{"id": 6, "end": "ISO"}]`."""

    url: str
    name: str = "test-alerts"
    topic: str = CAISO
    schedule: Schedule = field(default_factory=lambda: Schedule(
        interval_s=60, backoff_initial_s=5, backoff_max_s=300))
    requests_per_poll: int = 1

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        resp = None
        for _ in range(self.requests_per_poll):
            resp = await fetch.get(self.url, conditional=True, cache_bust=True)
        assert resp is not None
        if resp.not_modified:
            return PollResult(unchanged=True)
        try:
            items = json.loads(resp.body)
            conditions = tuple(self._condition(item, now) for item in items)
        except (ValueError, KeyError, TypeError) as exc:
            raise ParseError(f"not an alert list: {exc}") from exc
        return PollResult(conditions=conditions, complete=True)

    def _condition(self, item: dict[str, object], now: datetime) -> Condition:
        return Condition(
            id=f"caiso.flex:{item['id']}", kind=Kind.CAISO_FLEX_ALERT, severity=Severity.WATCH,
            status=Status.ACTIVE,
            window=Window(start=START, end=datetime.fromisoformat(str(item["end"]))),
            attributes=NoticeAttributes(flex_alert_id=int(str(item["id"]))),
            revision=0, observed_at=now, source_url=self.url)

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return last.model_copy(update={"status": Status.ENDED, "observed_at": now})


def alerts(*items: tuple[int, str]) -> bytes:
    return json.dumps([{"id": i, "end": end} for i, end in items]).encode()


@pytest.fixture
def manual() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def caiso(manual: ManualClock, aiohttp_server) -> AsyncIterator[tuple[FakeCaiso, TestServer]]:  # type: ignore[no-untyped-def]
    fake = FakeCaiso(manual)
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    yield fake, server


@pytest.fixture
async def fetcher(manual: ManualClock) -> AsyncIterator[HttpFetcher]:
    async with HttpFetcher(manual, user_agent="capmon-test/1 (ops@example.org)", timeout_s=5,
                           max_response_bytes=100_000) as f:
        yield f


async def drain(bus: MemoryBus, topic: str) -> list[Condition]:
    sub = bus.subscribe([topic], group=f"drain-{random.random()}")
    out = []
    while (msg := await sub.get(timeout=0.05)) is not None:
        out.append(condition_from_event(msg.event()))
    await sub.close()
    return out


def engine_for(source: AlertsSource, fetcher: HttpFetcher, bus: MemoryBus, clock: ManualClock,
               stale_after: int = 3) -> Engine:
    return Engine([source], fetcher, bus, clock, stale_after_intervals=stale_after,
                  rng=random.Random(7))


async def test_unchanged_observations_are_not_republished(caiso, fetcher, manual) -> None:  # type: ignore[no-untyped-def]
    fake, server = caiso
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))))
    bus = MemoryBus()
    engine = engine_for(AlertsSource(str(server.make_url(PATH))), fetcher, bus, manual)

    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    manual.advance(60)
    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    first = await drain(bus, CAISO)
    assert [c.id for c in first] == ["caiso.flex:6"]

    # The window moves: that is a new revision, with a higher revision number.
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T22:00:00-07:00"))))
    manual.advance(60)
    await engine.poll_once("test-alerts")
    revisions = await drain(bus, CAISO)
    assert len(revisions) == 2
    assert revisions[1].revision > revisions[0].revision
    assert revisions[1].window.end == datetime(2022, 9, 7, 5, 0, tzinfo=UTC)


async def test_conditional_request_304_is_unchanged_and_cache_buster_sent(  # type: ignore[no-untyped-def]
        caiso, fetcher, manual) -> None:
    fake, server = caiso
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00")), etag='"v1"'))
    bus = MemoryBus()
    engine = engine_for(AlertsSource(str(server.make_url(PATH))), fetcher, bus, manual)

    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    manual.advance(61)
    assert await engine.poll_once("test-alerts") is PollOutcome.UNCHANGED
    first, second = fake.seen(PATH)
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"] == '"v1"'
    assert first.query["_"] == str(int(START.timestamp()))
    assert second.query["_"] == str(int(START.timestamp()) + 61)
    assert first.headers["User-Agent"] == "capmon-test/1 (ops@example.org)"
    assert len(await drain(bus, CAISO)) == 1


async def test_after_a_failed_publish_the_next_poll_is_unconditional(  # type: ignore[no-untyped-def]
        caiso, fetcher, manual) -> None:
    # The fetcher keeps the ETag of content it could not publish: a conditional request would
    # get a 304 and the alert would never go out until the listing changed.
    fake, server = caiso
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00")), etag='"v1"'))
    bus = DownOnceBus()
    engine = engine_for(AlertsSource(str(server.make_url(PATH))), fetcher, bus, manual)

    assert await engine.poll_once("test-alerts") is PollOutcome.PUBLISH_ERROR
    manual.advance(61)
    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    manual.advance(61)
    assert await engine.poll_once("test-alerts") is PollOutcome.UNCHANGED
    _first, second, third = fake.seen(PATH)
    assert "If-None-Match" not in second.headers
    assert third.headers["If-None-Match"] == '"v1"'
    assert [c.id for c in await drain(bus, CAISO)] == ["caiso.flex:6"]


async def test_complete_listing_ends_what_disappeared(caiso, fetcher, manual) -> None:  # type: ignore[no-untyped-def]
    fake, server = caiso
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"),
                                        (7, "2022-09-07T21:00:00-07:00"))),
                Reply(body=alerts((7, "2022-09-07T21:00:00-07:00"))))
    bus = MemoryBus()
    engine = engine_for(AlertsSource(str(server.make_url(PATH))), fetcher, bus, manual)
    await engine.poll_once("test-alerts")
    manual.advance(60)
    await engine.poll_once("test-alerts")
    published = await drain(bus, CAISO)
    assert [(c.id, c.status) for c in published] == [
        ("caiso.flex:6", Status.ACTIVE), ("caiso.flex:7", Status.ACTIVE),
        ("caiso.flex:6", Status.ENDED)]


async def test_parse_error_is_counted_and_never_an_all_clear(caiso, fetcher, manual) -> None:  # type: ignore[no-untyped-def]
    fake, server = caiso
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))),
                Reply(body=b"<html>maintenance</html>"))
    bus = MemoryBus()
    engine = engine_for(AlertsSource(str(server.make_url(PATH))), fetcher, bus, manual)
    before = metrics.PARSE_ERRORS.labels("test-alerts", "parse")._value.get()
    await engine.poll_once("test-alerts")
    manual.advance(60)
    assert await engine.poll_once("test-alerts") is PollOutcome.PARSE_ERROR
    assert metrics.PARSE_ERRORS.labels("test-alerts", "parse")._value.get() == before + 1
    published = await drain(bus, CAISO)
    assert [(c.id, c.status) for c in published] == [("caiso.flex:6", Status.ACTIVE)]


async def test_oversized_body_is_a_too_large_fetch_error(caiso, fetcher, manual) -> None:  # type: ignore[no-untyped-def]
    fake, server = caiso
    url = str(server.make_url(PATH))
    # Both a declared Content-Length and a chunked body with none are cut off.
    fake.script(PATH, Reply(body=b"[" + b" " * 200_000 + b"]"),
                Reply(body=b"[" + b" " * 200_000 + b"]", chunked=True))
    bus = MemoryBus()
    engine = engine_for(AlertsSource(url), fetcher, bus, manual)
    before = metrics.FETCH_ERRORS.labels("test-alerts", "too_large")._value.get()
    assert await engine.poll_once("test-alerts") is PollOutcome.FETCH_ERROR
    assert await engine.poll_once("test-alerts") is PollOutcome.FETCH_ERROR
    assert metrics.FETCH_ERRORS.labels("test-alerts", "too_large")._value.get() == before + 2
    assert await drain(bus, CAISO) == []


async def run_until(engine: Engine, fake: FakeCaiso, requests: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await fake.wait_for(lambda: len(fake.requests) >= requests)
        # Let the last poll finish (publish) before stopping.
        for _ in range(50):
            await asyncio.sleep(0)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_source_never_seen_is_blind_after_the_grace_not_after_intervals(  # type: ignore[no-untyped-def]
        caiso, fetcher) -> None:
    clock = ManualClock(START, auto_advance=True)
    fake, server = caiso
    fake.clock = clock
    fake.script(PATH, *[Reply(status=503, body=b"down")] * 4,
                Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))))
    fetcher._clock = clock
    bus = MemoryBus()
    board = HealthBoard()
    # A 15-minute source: three missed intervals would be 45 minutes of silence.
    source = AlertsSource(str(server.make_url(PATH)),
                          schedule=Schedule(interval_s=900, backoff_initial_s=5))
    engine = Engine([source], fetcher, bus, clock, stale_after_intervals=3, blind_after_s=30,
                    board=board, rng=random.Random(7))
    await run_until(engine, fake, requests=5)

    times = [r.at for r in fake.requests]
    # 5, 10, then the retry is pulled in to the end of the 30 s grace.
    assert abs((times[3] - START).total_seconds() - 30) < 1
    health = await drain(bus, HEALTH)
    assert [h.status for h in health] == [Status.ACTIVE, Status.ENDED]
    blind, seen = health
    assert isinstance(blind.attributes, SourceHealthAttributes)
    assert blind.observed_at - START < timedelta(seconds=31)
    assert blind.window.start == START  # blind since start
    assert blind.attributes.reason == "server"
    assert blind.attributes.last_error == "127.0.0.1 answered HTTP 503: down"
    assert blind.attributes.last_success_at is None
    assert seen.window.end is not None and seen.revision > blind.revision
    # The process's board saw both, so /readyz need not wait for decide to record them.
    assert board.latest[health_id("test-alerts")] == seen
    assert board.polled == {"test-alerts"}


async def test_a_source_that_worked_goes_stale_on_its_cadence_with_backoff_capped(  # type: ignore[no-untyped-def]
        caiso, fetcher) -> None:
    clock = ManualClock(START, auto_advance=True)
    fake, server = caiso
    fake.clock = clock
    fake.script(PATH, Reply(body=alerts()), *[Reply(status=503, body=b"down")] * 9,
                Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))))
    fetcher._clock = clock
    bus = MemoryBus()
    source = AlertsSource(str(server.make_url(PATH)))
    engine = engine_for(source, fetcher, bus, clock, stale_after=3)
    await run_until(engine, fake, requests=11)

    times = [r.at for r in fake.requests]
    worked = times[0]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times[1:])]
    # 5, 10, 20, 40, then capped near the 60 s interval (never the old ~330 s).
    for gap, expected in zip(gaps[:4], [5, 10, 20, 40], strict=True):
        assert expected * 0.9 <= gap <= expected * 1.1
    assert all(gap <= 66 for gap in gaps)
    stale_at = worked + timedelta(seconds=180)
    assert any(abs((t - stale_at).total_seconds()) < 1 for t in times)

    health = await drain(bus, HEALTH)
    assert [h.status for h in health] == [Status.ACTIVE, Status.ENDED]
    active, ended = health
    assert active.id == health_id("test-alerts") and active.kind is Kind.SOURCE_HEALTH
    assert isinstance(active.attributes, SourceHealthAttributes)
    assert active.attributes.reason == "server" and active.attributes.missed_intervals >= 3
    assert active.attributes.last_success_at == worked
    assert active.observed_at >= stale_at and active.window.start == worked
    assert ended.revision > active.revision and ended.window.end is not None
    assert [c.id for c in await drain(bus, CAISO)] == ["caiso.flex:6"]
    assert not engine.is_stale("test-alerts")


async def test_a_restart_keeps_a_stored_blindness_until_a_good_poll_ends_it(  # type: ignore[no-untyped-def]
        caiso, fetcher, manual) -> None:
    fake, server = caiso
    fake.script(PATH, Reply(status=503, body=b"down"), Reply(status=503, body=b"down"),
                Reply(body=alerts()))
    stored = Condition(
        id=health_id("test-alerts"), kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
        status=Status.ACTIVE, window=Window(start=START - timedelta(hours=2)),
        attributes=SourceHealthAttributes(source="test-alerts", reason="server",
                                          last_error="127.0.0.1 answered HTTP 503: down"),
        revision=5, observed_at=START - timedelta(hours=2))
    bus = MemoryBus()
    board = HealthBoard()
    engine = Engine([AlertsSource(str(server.make_url(PATH)))], fetcher, bus, manual,
                    board=board, rng=random.Random(7))
    engine.restore({"test-alerts": stored, "another-source": stored})
    assert engine.is_stale("test-alerts") and board.latest[stored.id] == stored
    assert metrics.SOURCE_STALE.labels("test-alerts")._value.get() == 1

    # Still failing, for the same reason: nothing new to say (no "updated" after a restart).
    assert await engine.poll_once("test-alerts") is PollOutcome.FETCH_ERROR
    manual.advance(60)
    assert await engine.poll_once("test-alerts") is PollOutcome.FETCH_ERROR
    assert await drain(bus, HEALTH) == []
    manual.advance(60)
    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    (ended,) = await drain(bus, HEALTH)
    assert ended.status is Status.ENDED and ended.window.start == stored.window.start
    assert ended.revision > stored.revision
    assert metrics.SOURCE_STALE.labels("test-alerts")._value.get() == 0


async def test_failures_are_told_in_words(fetcher) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError) as refused:
        await fetcher.get(f"http://127.0.0.1:{port}/outlook/stats.txt")
    assert refused.value.reason == "connect"
    assert str(refused.value) == f"127.0.0.1:{port} refused the connection"

    key = ConnectionKey("www.caiso.com", 443, True, True, None, None, None)
    dns = aiohttp.ClientConnectorDNSError(key, OSError(socket.EAI_NONAME, "Name unknown"))
    unresolved = connection_error(URL("https://www.caiso.com/outlook/stats.txt"), dns)
    assert (unresolved.reason, str(unresolved)) == ("dns", "cannot resolve www.caiso.com")
    unreachable = aiohttp.ClientConnectorError(key, OSError(errno.ENETUNREACH, "unreachable"))
    assert str(connection_error(URL("https://www.sce.com/"), unreachable)) == (
        "no route to www.sce.com:443")


async def test_429_retry_after_is_honoured_and_bare_429_waits_min_spacing(  # type: ignore[no-untyped-def]
        caiso, fetcher) -> None:
    clock = ManualClock(START, auto_advance=True)
    fake, server = caiso
    fake.clock = clock
    fetcher._clock = clock
    throttle = b"<html><body><p>CAISO Acceptable Use Policy Violation. Please retry your " \
               b"request after 5 seconds.</p></body></html>"
    fake.script(PATH, Reply(status=429, body=b"slow down", headers={"Retry-After": "120"}),
                Reply(status=429, body=throttle, content_type="text/html"),
                Reply(body=alerts()))
    source = AlertsSource(str(server.make_url(PATH)),
                          schedule=Schedule(interval_s=600, min_spacing_s=5,
                                            backoff_initial_s=1, backoff_max_s=60))
    engine = engine_for(source, fetcher, MemoryBus(), clock, stale_after=100)
    await run_until(engine, fake, requests=3)
    t0, t1, t2 = (r.at for r in fake.requests[:3])
    assert (t1 - t0).total_seconds() >= 120
    # The bare 429 carries no Retry-After: the source's 5 s spacing is the floor (backoff 2 s).
    assert (t2 - t1).total_seconds() >= 5


async def test_min_spacing_between_requests_of_one_poll(caiso, fetcher) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(START, auto_advance=True)
    fake, server = caiso
    fake.clock = clock
    fetcher._clock = clock
    fake.script(PATH, Reply(body=alerts()))
    source = AlertsSource(str(server.make_url(PATH)), requests_per_poll=3,
                          schedule=Schedule(interval_s=600, min_spacing_s=5))
    engine = engine_for(source, fetcher, MemoryBus(), clock)
    assert await engine.poll_once("test-alerts") is PollOutcome.OK
    times = [r.at for r in fake.requests]
    assert len(times) == 3
    assert all((b - a).total_seconds() >= 5 for a, b in itertools.pairwise(times))


def test_next_slot_is_aligned_after_the_mark_with_jitter() -> None:
    schedule = Schedule(interval_s=300, offset_s=60, jitter_s=30)
    rng = random.Random(1)
    now = datetime(2026, 3, 11, 10, 2, 0, tzinfo=UTC)
    for _ in range(20):
        slot = next_slot(schedule, now, rng)
        assert datetime(2026, 3, 11, 10, 6, tzinfo=UTC) <= slot <= datetime(
            2026, 3, 11, 10, 6, 30, tzinfo=UTC)
    # Just after the slot's offset, the next slot is in the next interval.
    assert next_slot(Schedule(interval_s=300, offset_s=60),
                     datetime(2026, 3, 11, 10, 1, 1, tzinfo=UTC), rng) == datetime(
        2026, 3, 11, 10, 6, tzinfo=UTC)


def test_backoff_is_capped_at_the_interval_but_retry_after_is_a_floor() -> None:
    rng = random.Random(3)
    minute = Schedule(interval_s=60, backoff_initial_s=5, backoff_max_s=300)
    assert 54 <= backoff_delay(minute, 20, None, rng) <= 66
    hourly = Schedule(interval_s=3600, backoff_initial_s=5, backoff_max_s=300)
    assert 270 <= backoff_delay(hourly, 20, None, rng) <= 330
    assert backoff_delay(minute, 1, 900, rng) == 900


async def test_revisions_reach_both_buses_in_order_without_republishing(  # type: ignore[no-untyped-def]
        caiso, fetcher, manual, bus, new_topic) -> None:
    """The same engine run on the embedded bus and on a real Kafka broker (unique topic)."""
    fake, server = caiso
    topic = await new_topic(3)
    fake.script(PATH, Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))),
                Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))),
                Reply(body=alerts()))
    source = AlertsSource(str(server.make_url(PATH)), topic=topic)
    engine = engine_for(source, fetcher, bus, manual)
    for _ in range(3):
        assert await engine.poll_once("test-alerts") is PollOutcome.OK
        manual.advance(60)
    sub = bus.subscribe([topic], group=f"check-{random.random()}")
    got = []
    async with asyncio.timeout(30):
        while len(got) < 2:
            msg = await sub.get(timeout=1)
            if msg is not None:
                assert msg.key == "caiso.flex:6"
                got.append(condition_from_event(msg.event()))
    assert await sub.get(timeout=1) is None  # the unchanged second poll published nothing
    await sub.close()
    assert [c.status for c in got] == [Status.ACTIVE, Status.ENDED]
    assert got[1].revision > got[0].revision
