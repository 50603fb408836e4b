"""CloudEvents 1.0 envelopes for conditions and notifications, and the Kafka binary binding.

Uses the `cloudevents` package (2.x core API). On Kafka, every record is binary mode: the value
is the JSON `data`, attributes travel as `ce_*` headers, the key is the condition id (or the
subscription id for notifications). Consumers accept structured mode as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from monitor.errors import BusError
from monitor.events import Condition


class _OrjsonFormat(JSONFormat):
    """The SDK's JSON format, structured mode encoded by orjson: the same JSON (RFC 3339
    times with `Z`), several times faster than the standard library's encoder. A record's
    data (`to_record`: conditions, dead letters) keeps the SDK's encoder; notifications, a
    fan-out's thousands, are written by `binary_record` and `structured_json` below."""

    def write(self, event: BaseCloudEvent) -> bytes:
        data = event.get_data()
        if isinstance(data, bytes | bytearray):
            return super().write(event)
        out: dict[str, Any] = dict(event.get_attributes())
        if data is not None:
            out["data"] = data
        return orjson.dumps(out, option=orjson.OPT_UTC_Z)


_JSON = _OrjsonFormat()
CONDITION_TYPE_PREFIX = "capmon.condition."


@dataclass(frozen=True)
class Record:
    """One message as a bus carries it (the Kafka binary binding), independent of the bus."""

    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def condition_type(kind: str) -> str:
    return f"{CONDITION_TYPE_PREFIX}{kind}.v1"


def condition_event(condition: Condition, source: str) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": condition.event_id(),
            "source": source,
            "type": condition_type(condition.kind.value),
            "subject": condition.id,
            "time": condition.observed_at,
            "datacontenttype": "application/json",
            "severity": condition.severity.value,
        },
        data=condition.model_dump(mode="json"),
    )


def make_event(
    *, event_id: str, source: str, type_: str, subject: str, time: datetime, data: dict[str, Any],
    extensions: dict[str, str] | None = None,
) -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": event_id, "source": source, "type": type_, "subject": subject, "time": time,
        "datacontenttype": "application/json",
    }
    attributes.update(extensions or {})
    return CloudEvent(attributes=attributes, data=data)


def condition_from_event(event: BaseCloudEvent) -> Condition:
    if not event.get_type().startswith(CONDITION_TYPE_PREFIX):
        raise BusError(f"not a condition event: {event.get_type()}", reason="schema")
    data = event.get_data()
    if isinstance(data, bytes | str):
        return Condition.from_json(data)
    return Condition.model_validate(data)


def to_record(event: BaseCloudEvent, key: str) -> Record:
    msg = ce_kafka.to_binary(event, _JSON, key_mapper=lambda _e: key)
    return Record(key=key, value=msg.value, headers=tuple(msg.headers.items()))


def from_record(record: Record) -> BaseCloudEvent:
    """Decode binary or structured mode; a record that is neither raises BusError."""
    msg = ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    try:
        return ce_kafka.from_kafka(msg, _JSON)
    except Exception as exc:  # the SDK raises several unrelated types on bad input
        raise BusError(f"undecodable CloudEvent on key {record.key!r}: {exc}",
                       reason="schema") from exc


def to_json(event: BaseCloudEvent) -> bytes:
    """Structured-mode JSON (`application/cloudevents+json`), e.g. for webhook bodies."""
    return _JSON.write(event)


# -- events whose data is JSON already encoded --------------------------------------------------
# A fan-out encodes thousands of events at once. Building and validating the SDK's event object
# for each, and having the SDK encode its data again, was most of what decide spent publishing
# one to 1,000 subscribers and a fifth of deliver's time per webhook. These write the same
# binding from the attributes and the encoded data; tests hold them equal to the SDK's.

Attributes = Mapping[str, str | datetime]
SPECVERSION = b"1.0"


def binary_record(key: str, attributes: Attributes, data: bytes) -> Record:
    """The Kafka binary binding `to_record` writes for a JSON event with these attributes."""
    headers = [("content-type" if name == "datacontenttype" else f"ce_{name}",
                (_time(value) if isinstance(value, datetime) else value).encode("utf-8"))
               for name, value in attributes.items()]
    headers.append(("ce_specversion", SPECVERSION))
    return Record(key=key, value=data, headers=tuple(headers))


def structured_json(attributes: Attributes, data: bytes) -> bytes:
    """The structured-mode JSON `to_json` writes for a JSON event with these attributes."""
    out: dict[str, Any] = {**attributes, "specversion": SPECVERSION.decode(),
                           "data": orjson.Fragment(data)}
    return orjson.dumps(out, option=orjson.OPT_UTC_Z)


def binary_json_data(record: Record, type_: str) -> bytes | None:
    """The JSON data of a binary-mode record of CloudEvent type `type_`, read from its headers
    alone; None for any other record (structured mode, another type or version), which
    `from_record` decodes and judges."""
    headers = dict(record.headers)
    if (headers.get("ce_type") == type_.encode("utf-8")
            and headers.get("ce_specversion") == SPECVERSION
            and headers.get("content-type", b"").startswith(b"application/json")):
        return record.value
    return None


def _time(value: datetime) -> str:
    # As the SDK's binding writes a time: RFC 3339, UTC as `Z`.
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
