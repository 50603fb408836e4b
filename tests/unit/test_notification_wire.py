"""A notification's wire forms are written without the CloudEvents SDK's event object, for
speed: they must be what the SDK writes for the same event, and read back the same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from monitor.envelope import Record, binary_json_data, to_json, to_record
from monitor.errors import BusError
from monitor.notifications import (
    NOTIFICATION_TYPE,
    Notification,
    notification_cloudevent_json,
    notification_from_record,
    notification_json,
    notification_record,
)
from tests.deliver.helpers import notification

NOW = datetime(2022, 9, 6, 17, 26, 4, 250_000, tzinfo=UTC)


def sdk_event(n: Notification, source: str) -> CloudEvent:
    """The event as the SDK builds it, its data the notification's `model_dump`."""
    return CloudEvent(attributes={
        "id": n.key, "source": source, "type": NOTIFICATION_TYPE, "subject": n.subscription_id,
        "time": n.decided_at, "datacontenttype": "application/json",
        "severity": n.severity.value}, data=n.model_dump(mode="json"))


@pytest.fixture
def n() -> Notification:
    base = notification("t1", "sub-1", "webhook", "https://a.example/h", n=1, decided_at=NOW)
    # Non-ASCII text, as place names and summaries can hold.
    return base.model_copy(update={"summary": "Flex Alert 16:00-21:00 PT, Cañada ⚡"})


def test_the_json_is_the_models_dump(n: Notification) -> None:
    assert orjson.loads(notification_json(n)) == n.model_dump(mode="json")


def test_the_bus_record_is_the_sdks_binary_binding(n: Notification) -> None:
    ours = notification_record(n)
    sdk = to_record(sdk_event(n, "/capmon/decide"), n.subscription_id)
    assert ours.key == sdk.key == "sub-1"
    assert ours.headers == sdk.headers  # names, order, and the time's `Z`
    assert dict(ours.headers)["ce_time"] == b"2022-09-06T17:26:04.250000Z"
    assert orjson.loads(ours.value) == orjson.loads(sdk.value)


def test_the_webhook_body_is_the_sdks_structured_json(n: Notification) -> None:
    ours = orjson.loads(notification_cloudevent_json(n, "/capmon/deliver"))
    sdk = orjson.loads(to_json(sdk_event(n, "/capmon/deliver")))
    assert ours == sdk
    assert list(ours) == list(sdk)  # attributes in the same order, data last
    assert ours["data"]["summary"] == "Flex Alert 16:00-21:00 PT, Cañada ⚡"


def test_a_record_reads_back_as_the_notification(n: Notification) -> None:
    assert notification_from_record(notification_record(n)) == n
    # What the SDK wrote (an older capmon, another producer) reads the same.
    assert notification_from_record(to_record(sdk_event(n, "/x"), n.subscription_id)) == n


def test_structured_mode_records_take_the_sdks_path(n: Notification) -> None:
    record = Record(key=n.subscription_id, value=to_json(sdk_event(n, "/x")),
                    headers=(("content-type", b"application/cloudevents+json"),))
    assert binary_json_data(record, NOTIFICATION_TYPE) is None
    assert notification_from_record(record) == n


def test_other_types_and_versions_are_not_read_as_notifications(n: Notification) -> None:
    record = notification_record(n)
    other_type = dataclasses.replace(record, headers=tuple(
        (k, b"capmon.condition.caiso.eea.v1" if k == "ce_type" else v)
        for k, v in record.headers))
    assert binary_json_data(other_type, NOTIFICATION_TYPE) is None
    with pytest.raises(BusError) as caught:
        notification_from_record(other_type)
    assert caught.value.reason == "schema"
    old_version = dataclasses.replace(record, headers=tuple(
        (k, b"0.3" if k == "ce_specversion" else v) for k, v in record.headers))
    assert binary_json_data(old_version, NOTIFICATION_TYPE) is None


def test_a_record_that_is_not_a_valid_notification_raises(n: Notification) -> None:
    record = dataclasses.replace(notification_record(n), value=b'{"key": "k"}')
    with pytest.raises(ValidationError):
        notification_from_record(record)
    garbage = dataclasses.replace(record, value=b"\xff\x00 not json")
    with pytest.raises(ValidationError):
        notification_from_record(garbage)
