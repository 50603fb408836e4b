"""The daily heartbeat: its place in the subscription document, when it falls due (in the
subscriber's zone, across DST), its key and its words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from consumers.decide.heartbeat import heartbeats_due, next_heartbeat
from consumers.decide.index import SubscriptionIndex
from consumers.decide.stages.summary import item_line
from monitor.attributes import SourceHealthAttributes
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import Heartbeat, SubscriptionSpec

PT = ZoneInfo("America/Los_Angeles")
SOURCES = ("caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis", "caiso-ra-outlook",
           "caiso-notices", "sce-dr")
EIGHT = Heartbeat(at="08:00")


def spec(**kw: Any) -> SubscriptionSpec:
    return SubscriptionSpec.model_validate(
        {"name": "desk", "channel": {"type": "email", "address": "desk@cpa.example"}, **kw})


def health(source: str, status: Status) -> Condition:
    at = datetime(2022, 9, 6, 6, tzinfo=PT)
    return Condition(id=f"source.health:{source}", kind=Kind.SOURCE_HEALTH,
                     severity=Severity.WARNING, status=status, window=Window(start=at),
                     attributes=SourceHealthAttributes(source=source, reason="dns"),
                     revision=1, observed_at=at)


def test_the_heartbeat_option_is_validated_and_takes_the_subscribers_zone() -> None:
    assert spec(heartbeat={"at": "08:00"}).heartbeat == Heartbeat(
        at="08:00", timezone="America/Los_Angeles")
    inherited = spec(heartbeat={"at": "07:30"}, quiet_hours={
        "timezone": "America/Phoenix", "start": "22:00", "end": "06:00"})
    assert inherited.heartbeat == Heartbeat(at="07:30", timezone="America/Phoenix")
    own = spec(heartbeat={"at": "07:30", "timezone": "UTC"}, quiet_hours={
        "timezone": "America/Phoenix", "start": "22:00", "end": "06:00"})
    assert own.heartbeat is not None and own.heartbeat.timezone == "UTC"
    for bad, why in (({"at": "8am"}, "HH:MM"), ({"at": "24:00"}, "HH:MM"),
                     ({"at": "08:00", "timezone": "Mars/Olympus"}, "unknown IANA time zone"),
                     ({"at": "08:00", "every": "day"}, "Extra inputs")):
        with pytest.raises(ValidationError, match=why):
            spec(heartbeat=bad)
    assert spec().heartbeat is None


def test_due_once_per_local_day_at_the_local_time_across_dst() -> None:
    # 2022-11-06: Pacific falls back from PDT to PST; 08:00 stays 08:00 on the wall clock.
    t0 = datetime(2022, 11, 5, 9, tzinfo=PT)
    t1 = datetime(2022, 11, 8, 8, tzinfo=PT)
    times = EIGHT.times_between(t0, t1)
    assert [t.astimezone(UTC) for t in times] == [
        datetime(2022, 11, 6, 16, tzinfo=UTC), datetime(2022, 11, 7, 16, tzinfo=UTC),
        datetime(2022, 11, 8, 16, tzinfo=UTC)]
    assert EIGHT.times_between(times[0], times[0]) == []  # (t0, t1]: never twice
    # 02:30 does not exist on 2022-03-13 in Pacific: it still comes, once, that morning.
    skipped = Heartbeat(at="02:30").times_between(datetime(2022, 3, 13, tzinfo=PT),
                                                  datetime(2022, 3, 14, tzinfo=PT))
    assert len(skipped) == 1 and skipped[0].astimezone(PT).date().day == 13


def test_what_is_due_and_what_it_says() -> None:
    subs = [("sub-a", EIGHT), ("sub-b", Heartbeat(at="08:00", timezone="America/New_York"))]
    t0 = datetime(2022, 9, 6, 4, tzinfo=PT)  # 07:00 in New York
    t1 = datetime(2022, 9, 6, 8, tzinfo=PT)
    due = heartbeats_due(subs, t0, t1, [], SOURCES)
    assert [(d.subscription_id, d.at.astimezone(UTC)) for d in due] == [
        ("sub-b", datetime(2022, 9, 6, 12, tzinfo=UTC)),
        ("sub-a", datetime(2022, 9, 6, 15, tzinfo=UTC))]
    a = due[1]
    assert a.summary == "capmon is watching: 7 of 7 sources current"
    assert a.item.condition.id == "capmon.heartbeat:sub-a"
    assert a.item.condition.severity is Severity.INFO
    # The key is the subscription and the local date: a late or repeated tick finds the same.
    again = heartbeats_due(subs, t0 - timedelta(hours=1), t1 + timedelta(hours=3),
                           [health("sce-dr", Status.ACTIVE)], SOURCES)
    assert {d.key for d in again} == {d.key for d in due}
    blind = next(d for d in again if d.subscription_id == "sub-a")
    assert blind.summary == ("capmon is watching: 6 of 7 sources current; cannot see SCE DR "
                             "events")
    assert item_line(blind.item, blind.at) == blind.summary  # what decide sends
    assert heartbeats_due(subs, t1, t1 + timedelta(hours=20), [], SOURCES) == []  # next day
    # An ended source.health is current again.
    ok = heartbeats_due(subs, t0, t1, [health("sce-dr", Status.ENDED)], SOURCES)
    assert ok[1].summary == "capmon is watching: 7 of 7 sources current"


def test_next_heartbeat_and_the_index() -> None:
    now = datetime(2022, 9, 6, 9, tzinfo=PT)
    assert next_heartbeat([("a", EIGHT)], now) == datetime(2022, 9, 7, 8, tzinfo=PT)
    assert next_heartbeat([], now) is None
    at = datetime(2022, 9, 6, tzinfo=UTC)
    stored = [StoredSubscription(id=i, tenant_id="t", spec=s, status_reason=None,
                                 created_at=at, updated_at=at)
              for i, s in (("beat", spec(heartbeat={"at": "08:00"})), ("quiet", spec()),
                           ("paused", spec(heartbeat={"at": "09:00"}, status="paused")))]
    beats = SubscriptionIndex(stored).heartbeats()
    assert [(c.id, hb.at) for c, hb in beats] == [("beat", "08:00")]
