"""The event model: validation, JSON round trip, ordering, identity, the CloudEvents binding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from monitor.envelope import (
    Record,
    condition_event,
    condition_from_event,
    from_record,
    to_json,
    to_record,
)
from monitor.errors import BusError
from monitor.events import Condition, Severity, Status, event_id, revision_at

PDT = timezone(timedelta(hours=-7))
T0 = datetime(2022, 9, 6, 17, 26, tzinfo=PDT)


def eea3(**over: object) -> Condition:
    data: dict[str, object] = dict(
        id="caiso.notice:202202696", kind="caiso.eea", severity="critical", status="active",
        window={"start": "2022-09-06T17:17:00-07:00", "end": "2022-09-06T20:00:00-07:00"},
        regions=["CAISO Grid"],
        attributes={"notice_no": "202202696", "level": "3", "step": 1,
                    "reason": "Preparing for rotating power outages"},
        revision=1, observed_at=T0, source_url="imap://notices/202202696")
    data.update(over)
    return Condition.model_validate(data)


def test_json_form_is_the_design_contract() -> None:
    c = eea3()
    body = c.model_dump(mode="json")
    assert list(body) == ["id", "kind", "severity", "status", "window", "regions",
                          "attributes", "revision", "observed_at", "source_url"]
    assert body["window"] == {"start": "2022-09-06T17:17:00-07:00",
                              "end": "2022-09-06T20:00:00-07:00"}
    assert body["observed_at"] == "2022-09-06T17:26:00-07:00"
    assert Condition.from_json(c.to_json()) == c


def test_severity_ladder_orders_by_rank() -> None:
    ladder = [Severity.INFO, Severity.ADVISORY, Severity.WATCH, Severity.WARNING,
              Severity.EMERGENCY, Severity.CRITICAL]
    assert sorted(reversed(ladder)) == ladder
    assert Severity.WATCH < Severity.WARNING and Severity.CRITICAL >= Severity.EMERGENCY
    assert max(ladder) is Severity.CRITICAL


def test_attributes_are_typed_per_kind() -> None:
    with pytest.raises(ValidationError):
        eea3(attributes={"notice_no": "1", "unknown_field": 1})
    with pytest.raises(ValidationError):
        eea3(kind="caiso.peak_forecast")  # notice attributes are not a forecast's
    forecast = Condition(
        id="caiso.peak:CA ISO-TAC:2025-01-27", kind="caiso.peak_forecast", severity="info",
        status="active", attributes={"area": "CA ISO-TAC", "trade_date": "2025-01-27",
                                     "market_run": "DAM", "peak_mw": 27945.29, "hour_ending": 19},
        revision=1, observed_at=T0)
    assert forecast.attributes.peak_mw == 27945.29  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [
    {"observed_at": datetime(2022, 9, 6, 17, 26)},  # naive time
    {"window": {"start": "2022-09-06T20:00:00-07:00", "end": "2022-09-06T17:00:00-07:00"}},
    {"severity": "severe"},
    {"status": "open"},
    {"revision": -1},
    {"id": "Not An Id"},
])
def test_invalid_conditions_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        eea3(**bad)


def test_content_hash_ignores_when_and_where_but_not_what() -> None:
    a = eea3()
    later = eea3(revision=2, observed_at=T0 + timedelta(minutes=5), source_url="other")
    assert a.content_hash() == later.content_hash()
    assert a.content_hash() == eea3(regions=["CAISO Grid", "CAISO Grid"]).content_hash()
    assert a.content_hash() != eea3(status="ended").content_hash()
    assert a.content_hash() != eea3(window={"start": "2022-09-06T17:17:00-07:00"}).content_hash()


def test_event_ids_are_deterministic_per_revision() -> None:
    assert eea3().event_id() == eea3().event_id() == event_id("caiso.notice:202202696", 1)
    assert eea3(revision=2).event_id() != eea3().event_id()
    assert revision_at(T0) < revision_at(T0 + timedelta(microseconds=1))


def test_kafka_binary_binding_round_trip() -> None:
    c = eea3()
    record = to_record(condition_event(c, "/capmon/producers/caiso-notices"), c.id)
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"capmon.condition.caiso.eea.v1"
    assert headers["ce_subject"] == c.id.encode()
    assert headers["ce_id"] == c.event_id().encode()
    assert headers["content-type"] == b"application/json"
    assert record.key == c.id
    event = from_record(record)
    assert event.get_time() == c.observed_at
    assert condition_from_event(event) == c


def test_structured_mode_is_accepted_when_consuming() -> None:
    c = eea3()
    structured = to_json(condition_event(c, "/x"))
    record = Record(key=c.id, value=structured,
                    headers=(("content-type", b"application/cloudevents+json"),))
    assert condition_from_event(from_record(record)) == c


def test_garbage_records_raise_bus_errors_not_crashes() -> None:
    with pytest.raises(BusError):
        from_record(Record(key="k", value=b"\xff\x00not json", headers=()))
    ok = to_record(condition_event(eea3(), "/x"), "k")
    wrong_type = Record(key="k", value=ok.value, headers=tuple(
        (k, b"com.example.other" if k == "ce_type" else v) for k, v in ok.headers))
    with pytest.raises(BusError):
        condition_from_event(from_record(wrong_type))


def test_status_open_flags() -> None:
    assert Status.SCHEDULED.is_open and Status.ACTIVE.is_open
    assert not Status.ENDED.is_open and not Status.CANCELLED.is_open
    assert eea3(observed_at=datetime(2022, 9, 7, tzinfo=UTC)).observed_at.tzinfo is not None
