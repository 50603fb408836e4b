"""Calendar feeds end to end: a subscription made through the API, the 2022 heat wave's
notices and SCE DR events decided by the real decide, then the feed read back as a calendar
client would, by two iCalendar parsers (icalendar writes it; vobject reads it independently).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from aiohttp.test_utils import TestClient

from consumers.decide.decider import Decider
from monitor.attributes import DrEventAttributes
from monitor.bus import MemoryBus
from monitor.calendar_feed import render, uid
from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.store import Store
from tests.api.conftest import bearer, make_app, make_runtime, new_tenant
from tests.decide.conftest import T0
from tests.decide.timeline import heatwave, replay

PT = ZoneInfo("America/Los_Angeles")
SMS = {"type": "sms", "phone": "+14155550100"}
UNTIL = datetime(2022, 9, 9, 12, 0, tzinfo=PT)
# The EEA 2 of 9/7 issued for 16:00-21:00, superseded at 20:21 by one for 20:11-20:30.
SUPERSEDED = "caiso.notice:202202705"


def pt(text: str) -> datetime:
    return datetime.strptime(f"2022/{text}", "%Y/%m/%d %H:%M").replace(tzinfo=PT)


def dr_event(cid: str, status: Status, start: datetime, end: datetime | None,
             observed: datetime) -> Condition:
    return Condition(
        id=cid, kind=Kind.SCE_DR_EVENT, severity=Severity.WARNING, status=status,
        window=Window(start=start, end=end), regions=("SCE",),
        attributes=DrEventAttributes(program="BIP", product="BIP-30"),
        revision=revision_at(observed), observed_at=observed)


# A BIP event scheduled for 9/8 14:00-18:00, moved to 15:00-19:00, then cancelled; and one of
# 9/6 with no end announced (SCE's "TBD").
MOVED = "sce.dr:bip-20220908"
OPEN_ENDED = "sce.dr:bip-20220906"
DR_REVISIONS = [
    dr_event(MOVED, Status.SCHEDULED, pt("09/08 14:00"), pt("09/08 18:00"), pt("09/07 12:00")),
    dr_event(MOVED, Status.SCHEDULED, pt("09/08 15:00"), pt("09/08 19:00"), pt("09/07 15:00")),
    dr_event(MOVED, Status.CANCELLED, pt("09/08 15:00"), pt("09/08 19:00"), pt("09/08 09:00")),
    dr_event(OPEN_ENDED, Status.SCHEDULED, pt("09/06 16:00"), None, pt("09/06 10:00")),
]


@pytest.fixture
async def env(store: Store, aiohttp_client: Any) -> tuple[TestClient[Any, Any], str, str,
                                                          ManualClock]:
    clock = ManualClock(T0)
    rt = make_runtime(store, clock)
    await rt.bus.start()
    client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    _tenant, key = await new_tenant(client, "Desert Community Energy")
    resp = await client.post("/v1/subscriptions", headers=bearer(key),
                             json={"name": "DCE scheduler", "channel": SMS})
    assert resp.status == 201, await resp.text()
    return client, key, (await resp.json())["id"], clock


async def decide(store: Store, clock: ManualClock) -> None:
    bus = MemoryBus()
    await bus.start()
    decider = Decider(store, bus, clock)
    await decider.refresh_index(force=True)
    await replay(decider, clock, heatwave() + DR_REVISIONS, UNTIL)
    await bus.close()


async def make_feed(client: TestClient[Any, Any], key: str, sub_id: str) -> str:
    resp = await client.post(f"/v1/subscriptions/{sub_id}/calendar", headers=bearer(key))
    assert resp.status == 201, await resp.text()
    url: str = (await resp.json())["url"]
    assert url.endswith(".ics")
    return url[url.index("/v1/calendar/"):]


async def test_feed_lists_what_the_subscription_heard_as_a_client_reads_it(
        store: Store, env: tuple[TestClient[Any, Any], str, str, ManualClock]) -> None:
    client, key, sub_id, clock = env
    path = await make_feed(client, key, sub_id)
    await decide(store, clock)
    resp = await client.get(path)  # no key: calendar clients cannot send one
    assert resp.status == 200
    assert resp.content_type == "text/calendar"
    text = await resp.text()

    cal = vobject.readOne(text)
    assert cal.x_wr_calname.value == "capmon: DCE scheduler"
    assert cal.vtimezone.tzid.value == "America/Los_Angeles"
    events = {e.uid.value: e for e in cal.vevent_list}
    assert len(events) == len(cal.vevent_list)  # one event per condition, however revised

    eea2 = events[uid(SUPERSEDED)]
    # The superseding notice's window, in Pacific, and one change to it.
    assert eea2.dtstart.value == pt("09/07 20:11")
    assert eea2.dtend.value == pt("09/07 20:30")
    assert "DTSTART;TZID=America/Los_Angeles:20220907T201100" in text.replace("\r\n", "\n")
    assert int(eea2.sequence.value) == 1
    assert eea2.summary.value == "CAISO EEA 2"
    assert "202202705" in eea2.description.value
    assert eea2.status.value == "CONFIRMED"

    moved = events[uid(MOVED)]
    assert moved.status.value == "CANCELLED"
    assert moved.dtstart.value == pt("09/08 15:00")
    assert int(moved.sequence.value) == 2  # moved once, cancelled once

    open_ended = events[uid(OPEN_ENDED)]
    assert not hasattr(open_ended, "dtend")
    assert open_ended.summary.value.endswith("(end TBD)")

    # Every notice of the heat wave published by then is there.
    heard = {c.id for c in heatwave() if c.observed_at <= UNTIL} | {MOVED, OPEN_ENDED}
    assert set(events) == {uid(i) for i in heard}
    # The other parser agrees on the events and their times.
    parsed = icalendar.Calendar.from_ical(text)
    starts = {str(e["UID"]): e.decoded("DTSTART") for e in parsed.walk("VEVENT")}
    assert starts[uid(SUPERSEDED)] == pt("09/07 20:11")
    assert len(starts) == len(events)


async def test_unchanged_feed_is_304_and_a_change_is_a_new_etag(
        store: Store, env: tuple[TestClient[Any, Any], str, str, ManualClock]) -> None:
    client, key, sub_id, clock = env
    path = await make_feed(client, key, sub_id)
    first = await client.get(path)
    etag = first.headers["ETag"]
    assert "BEGIN:VEVENT" not in await first.text()  # nothing heard yet
    clock.advance(600)
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    await decide(store, clock)
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag


async def test_rotation_retires_the_old_address_and_delete_removes_the_feed(
        env: tuple[TestClient[Any, Any], str, str, ManualClock]) -> None:
    client, key, sub_id, _clock = env
    assert (await client.get(f"/v1/subscriptions/{sub_id}/calendar",
                             headers=bearer(key))).status == 404
    old = await make_feed(client, key, sub_id)
    new = await make_feed(client, key, sub_id)
    assert old != new
    assert (await client.get(old)).status == 404
    assert (await client.get(new)).status == 200
    shown = await client.get(f"/v1/subscriptions/{sub_id}/calendar", headers=bearer(key))
    body = await shown.json()
    assert shown.status == 200 and body["url"] is None  # the address is shown only once
    assert (await client.delete(f"/v1/subscriptions/{sub_id}/calendar",
                                headers=bearer(key))).status == 204
    assert (await client.get(new)).status == 404


async def test_another_tenant_cannot_make_or_read_the_feed(
        env: tuple[TestClient[Any, Any], str, str, ManualClock]) -> None:
    client, _key, sub_id, _clock = env
    _other, other_key = await new_tenant(client, "Clean Power Alliance")
    for method in ("POST", "GET", "DELETE"):
        resp = await client.request(method, f"/v1/subscriptions/{sub_id}/calendar",
                                    headers=bearer(other_key))
        assert resp.status == 404, method
    assert (await client.post(f"/v1/subscriptions/{sub_id}/calendar")).status == 401
    # Guessing is hopeless, and a wrong token says nothing about the right one.
    assert (await client.get("/v1/calendar/not-a-token.ics")).status == 404


async def test_deleting_the_subscription_deletes_its_feed(
        env: tuple[TestClient[Any, Any], str, str, ManualClock]) -> None:
    client, key, sub_id, _clock = env
    path = await make_feed(client, key, sub_id)
    assert (await client.delete(f"/v1/subscriptions/{sub_id}",
                                headers=bearer(key))).status == 204
    assert (await client.get(path)).status == 404


def test_uid_is_stable_and_opaque() -> None:
    assert uid(SUPERSEDED) == uid(SUPERSEDED) != uid(MOVED)
    assert SUPERSEDED not in uid(SUPERSEDED) and uid(MOVED).endswith("@capmon")


def test_the_feeds_time_zone_agrees_with_the_tz_database_hour_by_hour() -> None:
    # Read back by a reader that applies the VTIMEZONE's own rules, every hour either side of
    # each change from 2008 to 2037 has the offset the tz database gives.
    stamp = datetime(2022, 9, 1, tzinfo=PT)
    cal = vobject.readOne(render([], name="tz", now=stamp).decode())
    vtz = cal.vtimezone.gettzinfo()
    for year in range(2008, 2038):
        for month in (3, 11):
            for day in range(1, 15):
                for hour in (0, 1, 3, 4, 12):
                    local = datetime(year, month, day, hour)
                    assert (local.replace(tzinfo=vtz).utcoffset()
                            == local.replace(tzinfo=PT).utcoffset()), local
