"""The demo's parts on their own: the quiescence-driven clock, the observed bus, the notice
feed over the replay server, and the poll-interval settings the demo runs with."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from capmon.demo.bus import ObservedBus
from capmon.demo.driver import TimeDriver
from capmon.replay import ReplayServer
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ImapSettings, Settings
from monitor.envelope import condition_event
from monitor.errors import ConfigError, ParseError
from monitor.events import Condition, Kind, Severity, Status
from monitor.store import Store
from monitor.topics import CAISO
from producers.caiso_mailbox import NoticeMailbox
from producers.catalog import build_sources
from producers.http import HttpFetcher
from producers.notice_feed import NoticeFeed, parse_listing

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2022-09-heatwave"
PT = ZoneInfo("America/Los_Angeles")
T0 = datetime(2022, 9, 6, 12, 0, tzinfo=UTC)


def status(n: int, at: datetime) -> Condition:
    return Condition(id="caiso.status:grid", kind=Kind.CAISO_STATUS, severity=Severity.INFO,
                     status=Status.ACTIVE, attributes={"current_demand_mw": 40_000 + n},
                     observed_at=at, revision=n + 1)


async def test_driver_never_moves_time_while_a_consumer_is_busy() -> None:
    """A producer publishes every 60 s of scenario time; the consumer takes real time (as a
    store write or an HTTP call does) before acknowledging. Every record must be handled at
    the scenario time it was published: the clock waits for the consumer."""
    clock = ManualClock(T0)
    bus = ObservedBus(MemoryBus())
    await bus.start()
    stop = asyncio.Event()
    published: list[datetime] = []
    handled: list[datetime] = []

    async def producer() -> None:
        for n in range(5):
            published.append(clock.now())
            await bus.publish(CAISO, "k", condition_event(status(n, clock.now()), source="/t"))
            await clock.sleep(60)

    async def consumer() -> None:
        sub = bus.subscribe([CAISO], "g")
        await sub.start()
        while not stop.is_set():
            msg = await sub.get(timeout=0.05)
            if msg is None:
                continue
            await asyncio.sleep(0.03)  # real time, invisible to the clock
            handled.append(clock.now())
            await sub.ack(msg)
        await sub.close()

    tasks = [asyncio.create_task(producer()), asyncio.create_task(consumer())]
    driver = TimeDriver(clock, bus)
    await driver.calibrate(plateau_s=0.1)
    await driver.run_until(T0 + timedelta(minutes=10))
    stop.set()
    await asyncio.gather(*tasks)
    assert handled == published == [T0 + timedelta(minutes=m) for m in range(5)]
    assert bus.backlog() == 0 and bus.published[CAISO] == 5 and bus.acked[(CAISO, "g")] == 5
    assert clock.now() == T0 + timedelta(minutes=10)


async def test_driver_paces_at_the_requested_speed() -> None:
    clock = ManualClock(T0)
    bus = ObservedBus(MemoryBus())
    await bus.start()
    ticks: list[datetime] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(600)
            ticks.append(clock.now())

    task = asyncio.create_task(ticker())
    driver = TimeDriver(clock, bus, speed=36_000.0)  # 10 scenario hours per real second
    await driver.calibrate(plateau_s=0.05)
    started = time.monotonic()
    await driver.run_until(T0 + timedelta(hours=1))
    elapsed = time.monotonic() - started
    task.cancel()
    assert len(ticks) == 6
    assert elapsed >= 0.09  # one scenario hour takes at least 0.1 s at this speed


async def test_observed_bus_namespaces_topics_and_groups_on_the_broker() -> None:
    inner = MemoryBus()
    bus = ObservedBus(inner, prefix="demo-x.")
    await bus.start()
    await bus.publish(CAISO, "k", condition_event(status(0, T0), source="/t"))
    raw = inner.subscribe(["demo-x." + CAISO], "raw")
    msg = await raw.get(timeout=1)
    assert msg is not None and msg.topic == "demo-x." + CAISO
    sub = bus.subscribe([CAISO], "g")
    seen = await sub.get(timeout=1)
    assert seen is not None and seen.topic == CAISO  # handlers see the logical name
    assert bus.backlog() == 1
    await sub.ack(seen)
    assert bus.backlog() == 0


async def test_notice_feed_reads_each_email_once_at_its_time(store: Store) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 25, tzinfo=PT))
    bus = MemoryBus()
    await bus.start()
    sub = bus.subscribe([CAISO], "reader")
    async with ReplayServer(SCENARIO, clock) as replay, \
            HttpFetcher(clock, user_agent="t", timeout_s=5, max_response_bytes=10**7) as http:
        url = f"{replay.base_url}/replay/notices"
        box = NoticeMailbox(ImapSettings(), store, bus, clock, source_url=url)
        feed = NoticeFeed(url, box, http, clock)
        next_at = await feed.sync()
        assert next_at == datetime(2022, 9, 6, 17, 26, tzinfo=PT)
        before = {m.key for m in await drain(sub)}
        assert "caiso.notice:202202696" not in before
        assert await feed.sync() == next_at  # nothing new, nothing republished
        assert await drain(sub) == []
        clock.set(next_at)
        await feed.sync()
        assert [m.key for m in await drain(sub)] == ["caiso.notice:202202696"]
        # A restarted feed re-reads the listing; the store's Message-IDs stop duplicates.
        again = NoticeFeed(url, NoticeMailbox(ImapSettings(), store, bus, clock,
                                              source_url=url), http, clock)
        await again.sync()
        assert await drain(sub) == []


async def drain(sub: object) -> list[object]:
    out = []
    while (msg := await sub.get(timeout=0.05)) is not None:  # type: ignore[attr-defined]
        out.append(msg)
        await sub.ack(msg)  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("body", [b"not json", b'{"messages": [{"url": "/x"}]}',
                                  b'{"messages": [], "next_at": "2022-09-06T17:26:00"}'])
def test_a_bad_feed_listing_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_listing(body)


def test_poll_intervals_and_jitter_come_from_settings() -> None:
    settings = Settings(sources={"intervals": {"caiso-flex": 900, "caiso-stats": 3600},
                                 "jitter": False})
    by_name = {s.name: s.schedule for s in build_sources(settings)}
    assert by_name["caiso-flex"].interval_s == 900
    assert by_name["caiso-stats"].interval_s == 3600
    assert by_name["caiso-stats"].offset_s == 60  # published a minute after the mark
    assert all(s.jitter_s == 0 for s in by_name.values())
    assert by_name["caiso-oasis"].min_spacing_s == 5.0  # OASIS's rule survives
    with pytest.raises(ConfigError, match="caiso-flx"):
        build_sources(Settings(sources={"intervals": {"caiso-flx": 60}}))
