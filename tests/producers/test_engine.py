"""The polling engine against a real local server playing CAISO URLs.

The source here is deliberately tiny (a JSON list of alerts) so these tests pin the engine:
change detection, conditional requests and the cache-buster, disappearance, size cap, backoff,
Retry-After and 429, staleness -> source.health and recovery, minimum spacing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer

from monitor import metrics
from monitor.attributes import NoticeAttributes, SourceHealthAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.envelope import condition_from_event
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.topics import CAISO, HEALTH
from producers.engine import Engine, Outcome, backoff_delay, health_id, next_slot
from producers.http import HttpFetcher, parse_retry_after
from producers.source import Fetcher, PollResult, Schedule
from tests.producers.fake_caiso import FakeCaiso, Reply

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

    assert await engine.poll_once("test-alerts") is Outcome.OK
    manual.advance(60)
    assert await engine.poll_once("test-alerts") is Outcome.OK
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

    assert await engine.poll_once("test-alerts") is Outcome.OK
    manual.advance(61)
    assert await engine.poll_once("test-alerts") is Outcome.UNCHANGED
    first, second = fake.seen(PATH)
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"] == '"v1"'
    assert first.query["_"] == str(int(START.timestamp()))
    assert second.query["_"] == str(int(START.timestamp()) + 61)
    assert first.headers["User-Agent"] == "capmon-test/1 (ops@example.org)"
    assert len(await drain(bus, CAISO)) == 1


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
    assert await engine.poll_once("test-alerts") is Outcome.PARSE_ERROR
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
    assert await engine.poll_once("test-alerts") is Outcome.FETCH_ERROR
    assert await engine.poll_once("test-alerts") is Outcome.FETCH_ERROR
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


async def test_backoff_grows_exponentially_then_stale_health_then_recovery(  # type: ignore[no-untyped-def]
        caiso, fetcher) -> None:
    clock = ManualClock(START, auto_advance=True)
    fake, server = caiso
    fake.clock = clock
    fake.script(PATH, *[Reply(status=503, body=b"down")] * 8,
                Reply(body=alerts((6, "2022-09-06T21:00:00-07:00"))))
    fetcher._clock = clock
    bus = MemoryBus()
    source = AlertsSource(str(server.make_url(PATH)))
    engine = engine_for(source, fetcher, bus, clock, stale_after=3)
    await run_until(engine, fake, requests=10)

    times = [r.at for r in fake.requests]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # 5, 10, 20, 40, 80 (+-10 %), then clamped so staleness is declared on time at 180 s.
    for gap, expected in zip(gaps[:5], [5, 10, 20, 40, 80], strict=True):
        assert expected * 0.9 <= gap <= expected * 1.1
    stale_at = START + timedelta(seconds=180)
    assert any(abs((t - stale_at).total_seconds()) < 6 for t in times)

    health = await drain(bus, HEALTH)
    assert [h.status for h in health] == [Status.ACTIVE, Status.ENDED]
    active, ended = health
    assert active.id == health_id("test-alerts") and active.kind is Kind.SOURCE_HEALTH
    assert isinstance(active.attributes, SourceHealthAttributes)
    assert active.attributes.reason == "server" and active.attributes.missed_intervals >= 3
    assert active.observed_at >= stale_at
    assert ended.revision > active.revision and ended.window.end is not None
    assert [c.id for c in await drain(bus, CAISO)] == ["caiso.flex:6"]
    assert not engine.is_stale("test-alerts")


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
    assert await engine.poll_once("test-alerts") is Outcome.OK
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


def test_backoff_is_capped_but_retry_after_is_a_floor() -> None:
    schedule = Schedule(interval_s=60, backoff_initial_s=5, backoff_max_s=300)
    rng = random.Random(3)
    assert 270 <= backoff_delay(schedule, 20, None, rng) <= 330
    assert backoff_delay(schedule, 1, 900, rng) == 900


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Wed, 11 Mar 2026 10:01:00 GMT", now) == 60
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
