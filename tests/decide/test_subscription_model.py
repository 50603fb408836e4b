"""The subscription document: what it accepts, what it refuses (with a reason), and how the
index matches regions, severities and programs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from consumers.decide.index import SubscriptionIndex
from monitor.attributes import DrEventAttributes, NoticeAttributes
from monitor.events import Condition, Kind, Severity, Status
from monitor.store.subscriptions import StoredSubscription
from monitor.subscriptions import QuietHours, SubscriptionSpec, parse_duration

SMS = {"type": "sms", "phone": "+14155550100"}
NOW = datetime(2022, 9, 6, 12, tzinfo=UTC)


def spec(**kw: Any) -> SubscriptionSpec:
    return SubscriptionSpec.model_validate({"name": "s", "channel": SMS, **kw})


@pytest.mark.parametrize(("doc", "message"), [
    ({"channel": {"type": "sms", "phone": "4155550100"}}, "E.164"),
    ({"channel": {"type": "sms", "phone": "+1415555"}}, "not a valid phone number"),
    ({"channel": {"type": "email", "address": "not-an-address"}}, "@"),
    ({"channel": {"type": "webhook", "url": "ftp://cca.example/x"}}, "https://"),
    ({"channel": {"type": "webhook", "url": "https://u:p@cca.example/x"}}, "credentials"),
    ({"repeat_interval": "4 hours"}, "ISO 8601"),
    ({"repeat_interval": "PT1M"}, "at least PT5M"),
    ({"transitions": ["reminder"]}, "repeat_interval"),
    ({"quiet_hours": {"start": "22:00", "end": "6am"}}, "HH:MM"),
    ({"quiet_hours": {"timezone": "Mars/Olympus", "start": "22:00", "end": "06:00"}},
     "unknown IANA time zone"),
    ({"match": {"thresholds": [{"kind": "caiso.peak_forecast"}]}}, "exactly one"),
    ({"match": {"thresholds": [{"kind": "caiso.peak_forecast", "above": 45000,
                                "clear_below": 46000}]}}, "must not exceed"),
    ({"match": {"kinds": ["caiso.nope"]}}, "Input should be"),
    ({"surprise": True}, "Extra inputs"),
])
def test_refused_with_a_reason(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**doc)
    assert message in str(err.value)


def test_normalized() -> None:
    s = spec(channel={"type": "sms", "phone": "+1 (415) 555-0100"}, repeat_interval="P1DT2H",
             transitions=["issued", "issued", "reminder"])
    assert s.channel.phone == "+14155550100"  # type: ignore[union-attr]
    assert s.repeat == timedelta(days=1, hours=2)
    assert s.transitions == ["issued", "reminder"]
    assert parse_duration("PT30M") == timedelta(minutes=30)


@pytest.mark.parametrize(("local", "quiet"), [
    ("21:59", False), ("22:00", True), ("23:30", True), ("03:00", True), ("05:59", True),
    ("06:00", False), ("12:00", False)])
def test_quiet_hours_wrap_midnight_in_local_time(local: str, quiet: bool) -> None:
    q = QuietHours(start="22:00", end="06:00")
    h, m = map(int, local.split(":"))
    # 2022-09-06 is PDT (UTC-7).
    at = datetime(2022, 9, 6, h, m, tzinfo=UTC) + timedelta(hours=7)
    assert q.is_quiet(at) is quiet


def notice(kind: Kind, severity: Severity, regions: tuple[str, ...]) -> Condition:
    return Condition(id="caiso.notice:1", kind=kind, severity=severity, status=Status.ACTIVE,
                     regions=regions, attributes=NoticeAttributes(), revision=1,
                     observed_at=NOW)


def dr(program: str, sublaps: tuple[str, ...]) -> Condition:
    return Condition(id="sce.dr:1", kind=Kind.SCE_DR_EVENT, severity=Severity.WARNING,
                     status=Status.ACTIVE, attributes=DrEventAttributes(
                         program=program, sublaps=sublaps), revision=1, observed_at=NOW)


def index(**subs: dict[str, Any]) -> SubscriptionIndex:
    return SubscriptionIndex([
        StoredSubscription(id=name, tenant_id="t", spec=spec(match=m), status_reason=None,
                           created_at=NOW, updated_at=NOW) for name, m in subs.items()])


def test_index_matching() -> None:
    idx = index(
        anything={},
        south={"regions": ["SCLD"], "min_severity": "warning"},
        grid={"regions": ["CAISO Grid"]},
        north_te={"kinds": ["caiso.transmission_emergency"], "regions": ["Northern CA Region"]},
        cpp={"kinds": ["sce.dr_event"], "programs": ["CPP"]},
        critical={"kinds": ["caiso.eea"], "min_severity": "critical"},
    )

    def names(c: Condition) -> set[str]:
        return {s.id for s in idx.match(c)}

    assert names(notice(Kind.CAISO_EEA, Severity.CRITICAL, ("CAISO Grid",))) == {
        "anything", "south", "grid", "critical"}
    assert names(notice(Kind.CAISO_EEA, Severity.WATCH, ("CAISO Grid",))) == {
        "anything", "grid"}
    assert names(notice(Kind.CAISO_TRANSMISSION_EMERGENCY, Severity.WARNING,
                        ("Northern CA Region",))) == {"anything", "north_te"}
    # A Southern CA Region notice covers the SCLD SubLAP inside it.
    assert names(notice(Kind.CAISO_RMO, Severity.WARNING, ("Southern CA Region",))) == {
        "anything", "south"}
    assert names(dr("CPP", ("SCLD",))) == {"anything", "south", "cpp"}
    assert names(dr("BIP", ("SCEN",))) == {"anything"}


def test_programs_narrow_dr_events_only() -> None:
    # The demo's on-call phone: EEAs plus BIP/SDP events, not CPP.
    idx = index(desk={"kinds": ["caiso.eea", "sce.dr_event"], "programs": ["BIP", "SDP"]})

    def names(c: Condition) -> set[str]:
        return {s.id for s in idx.match(c)}

    assert names(notice(Kind.CAISO_EEA, Severity.CRITICAL, ("CAISO Grid",))) == {"desk"}
    assert names(dr("BIP", ("SCEN",))) == {"desk"}
    assert names(dr("CPP", ("SCEN",))) == set()
