"""The utility-neutral half: any `DrEventSource` plugs into `DrProducer` and the engine, and
the lifecycle (scheduled, active, ended, cancelled) is derived the same way for all."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from monitor.attributes import DrEventAttributes
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.envelope import condition_from_event
from monitor.events import Severity, Status
from monitor.topics import SCE
from producers.dr_events import (
    DrEvent,
    DrEventSource,
    DrProducer,
    Snapshot,
    closed,
    derived_key,
    status_at,
    to_condition,
)
from producers.engine import Engine
from producers.source import Fetcher, Response, Schedule

T0 = datetime(2021, 7, 8, 12, 0, tzinfo=UTC)


def pdp(start: datetime, **over: object) -> DrEvent:
    base = DrEvent(utility="PGE", program="PDP", product="PDP", severity=Severity.WARNING,
                   interruptible=False, customer_class="all", listed="scheduled", start=start,
                   end=start + timedelta(hours=3), channel="replay", regions=("PGE-TAC",))
    return replace(base, **over)  # type: ignore[arg-type]


@dataclass
class ListedDays:
    """A utility whose page is a plain list of event days (PG&E's PDP history, say)."""

    events: list[DrEvent] = field(default_factory=list)
    utility: str = "PGE"

    async def snapshot(self, fetch: Fetcher, now: datetime) -> Snapshot:
        return Snapshot(events=tuple(self.events), url="https://pge.example/pdp")


class NoFetch:
    async def get(self, url: str, **_: object) -> Response:
        raise AssertionError("this source does not fetch")


def test_a_new_utility_plugs_in_without_touching_anything() -> None:
    source: DrEventSource = ListedDays()
    producer = DrProducer("pge-pdp", SCE, Schedule(interval_s=300), source)
    assert producer.name == "pge-pdp"


async def test_lifecycle_of_another_utility_through_the_engine() -> None:
    clock = ManualClock(T0)
    days = ListedDays([pdp(T0 + timedelta(days=1)), pdp(T0 + timedelta(days=2))])
    bus = MemoryBus()
    engine = Engine([DrProducer("pge-pdp", SCE, Schedule(interval_s=300), days)], NoFetch(),
                    bus, clock, stale_after_intervals=3, rng=random.Random(1))
    sub = bus.subscribe([SCE], group="t")
    await engine.poll_once("pge-pdp")
    days.events = days.events[:1]  # the second day is called off
    clock.advance(300)
    await engine.poll_once("pge-pdp")
    clock.set(T0 + timedelta(days=1, minutes=1))
    await engine.poll_once("pge-pdp")
    days.events = []
    clock.set(T0 + timedelta(days=1, hours=3, minutes=1))
    await engine.poll_once("pge-pdp")
    seen = []
    while (msg := await sub.get(timeout=0.05)) is not None:
        seen.append(condition_from_event(msg.event()))
    # Order is kept per condition id (one partition per key), not across ids.
    by_id: dict[str, list[Status]] = {}
    for c in seen:
        by_id.setdefault(c.id, []).append(c.status)
    assert by_id == {
        "pge.dr:pdp.pdp.20210709t1200.loc-all": [Status.SCHEDULED, Status.ACTIVE, Status.ENDED],
        "pge.dr:pdp.pdp.20210710t1200.loc-all": [Status.SCHEDULED, Status.CANCELLED]}
    ended = [c for c in seen if c.status is Status.ENDED]
    assert ended[0].window.end == T0 + timedelta(days=1, hours=3)
    assert all("PGE-TAC" in c.regions for c in seen)


def test_status_follows_the_list_and_the_clock() -> None:
    ev = pdp(T0)
    assert status_at(ev, T0 - timedelta(seconds=1)) is Status.SCHEDULED
    assert status_at(ev, T0) is Status.ACTIVE  # start passed while still scheduled
    assert status_at(replace(ev, listed="active"), T0 - timedelta(hours=1)) is Status.ACTIVE
    assert status_at(ev, T0 + timedelta(hours=3)) is Status.ENDED
    # An estimated end (SDP's) passing does not end a listed event; a TBD end never does.
    assert status_at(replace(ev, estimated_end=True), T0 + timedelta(hours=4)) is Status.ACTIVE
    assert status_at(replace(ev, end=None), T0 + timedelta(days=9)) is Status.ACTIVE
    assert status_at(replace(ev, listed=None), T0 - timedelta(days=1)) is Status.ENDED


def test_disappearance_cancels_before_start_and_ends_after() -> None:
    c = to_condition(pdp(T0), T0 - timedelta(hours=1))
    gone_early = closed(c, T0 - timedelta(minutes=1))
    assert gone_early.status is Status.CANCELLED and gone_early.window == c.window
    tbd = to_condition(pdp(T0, end=None, listed="active"), T0 + timedelta(minutes=5))
    gone = closed(tbd, T0 + timedelta(minutes=30))
    assert gone.status is Status.ENDED and gone.window.end == T0 + timedelta(minutes=30)
    assert isinstance(gone.attributes, DrEventAttributes) and gone.attributes.end_inferred
    cut_short = closed(c, T0 + timedelta(hours=1))  # listed to 15:00, gone at 13:00
    assert cut_short.window.end == T0 + timedelta(hours=1)
    assert gone.revision > tbd.revision


def test_derived_keys_are_stable_and_bounded() -> None:
    ev = pdp(T0, location_type="SUBSTATION", locations=tuple(str(n) for n in range(5000, 5040)))
    key = derived_key(ev)
    assert key == derived_key(replace(ev, end=None))  # a new end is the same event
    assert key != derived_key(replace(ev, start=T0 + timedelta(minutes=1)))
    assert len(key) < 100
