"""The notification contract between decide and deliver.

Decide publishes one `Notification` per subscription that must hear about something, to
`capmon.notifications.v1`, keyed by subscription id. Its `key` is deterministic, so replays,
restarts and redelivered messages produce the same key and the ledger admits it once.
Secrets never travel in a notification: deliver reads the subscription's secret from the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from cloudevents.core.base import BaseCloudEvent
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from monitor.envelope import (
    Record,
    binary_json_data,
    binary_record,
    from_record,
    structured_json,
)
from monitor.errors import BusError
from monitor.events import Condition, Severity

NOTIFICATION_TYPE = "capmon.notification.v1"


class Transition(StrEnum):
    ISSUED = "issued"
    UPDATED = "updated"
    STARTED = "started"
    ENDED = "ended"
    CANCELLED = "cancelled"
    REMINDER = "reminder"
    TEST = "test"
    # The subscriber's daily "capmon is watching" (consumers/decide/heartbeat.py), not a
    # condition's.
    HEARTBEAT = "heartbeat"


ALL_CLEAR = frozenset({Transition.ENDED, Transition.CANCELLED})


def all_clear(transitions: Iterable[str]) -> bool:
    """Whether a notification of these items' transitions only says something is over:
    there is nothing left for anyone to take, so it takes no acknowledgement."""
    return all(t in ALL_CLEAR for t in transitions)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Frozen):
    type: Literal["webhook"] = "webhook"
    url: str


class SmsChannel(_Frozen):
    type: Literal["sms"] = "sms"
    phone: str = Field(description="E.164")


class EmailChannel(_Frozen):
    type: Literal["email"] = "email"
    address: str


class VoiceChannel(_Frozen):
    type: Literal["voice"] = "voice"
    phone: str = Field(description="E.164")
    # More calls after a busy, unanswered or failed one, and how long to wait before each.
    retries: int = Field(default=2, ge=0, le=5)
    retry_interval_s: int = Field(default=120, ge=60)


AnyChannel = WebhookChannel | SmsChannel | EmailChannel | VoiceChannel
Channel = Annotated[AnyChannel, Field(discriminator="type")]


class NotificationItem(_Frozen):
    """One condition transition inside a (possibly grouped) notification."""

    transition: Transition
    condition: Condition
    # Condition-specific facts that made the transition (e.g. the old window on "updated").
    facts: dict[str, Any] = Field(default_factory=dict)


class EscalationRef(_Frozen):
    """Which escalation run paged this notification, and at which step (1 and later)."""

    run_id: str
    policy_id: str
    step: int = Field(ge=1)


class Notification(_Frozen):
    key: str = Field(min_length=16, max_length=64)
    tenant_id: str
    subscription_id: str
    subscription_name: str = ""
    channel: Channel
    decided_at: AwareDatetime
    severity: Severity
    items: tuple[NotificationItem, ...] = Field(min_length=1)
    # One human line (SMS-sized), e.g. "CAISO EEA 3 active 17:17-20:00 PT (notice 202202696)".
    summary: str
    test: bool = False
    acknowledgeable: bool = Field(
        default=False, description="at or above its subscription's ack_severity: "
                                   "POST /v1/notifications/{key}/ack, or reply ACK to its SMS")
    escalation: EscalationRef | None = Field(
        default=None, description="set when an escalation policy's later step paged it")

    @property
    def earliest_observed_at(self) -> AwareDatetime:
        return min(i.condition.observed_at for i in self.items)


def notification_key(
    subscription_id: str, condition_id: str, transition: Transition | str,
    facts: Mapping[str, Any],
) -> str:
    """hash(subscription id, condition id, transition, the revision facts of the transition).

    `facts` must hold only what defines the transition (status, window, level, a reminder's
    period number...), never observation times or revision numbers, so that the same
    transition observed twice, replayed or re-derived after a restart gets the same key.
    """
    body = json.dumps([subscription_id, condition_id, str(transition), dict(facts)],
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:40]


def group_key(item_keys: list[str]) -> str:
    """The key of a grouped notification: a hash of its items' keys (order-independent)."""
    return hashlib.sha256("\n".join(sorted(item_keys)).encode("utf-8")).hexdigest()[:40]


_JSON: TypeAdapter[Notification] = TypeAdapter(Notification)


def notification_json(n: Notification) -> bytes:
    """The notification's JSON (its `model_dump(mode="json")`), encoded by pydantic in one
    step: a bus record's data, a ledger row's payload, a webhook's `data`."""
    return _JSON.dump_json(n)


def _attributes(n: Notification, source: str) -> dict[str, str | datetime]:
    return {"id": n.key, "source": source, "type": NOTIFICATION_TYPE,
            "subject": n.subscription_id, "time": n.decided_at,
            "datacontenttype": "application/json", "severity": n.severity.value}


def notification_record(n: Notification, source: str = "/capmon/decide") -> Record:
    """The bus record of `n` (a CloudEvent in binary mode), keyed by its subscription."""
    return binary_record(n.subscription_id, _attributes(n, source), notification_json(n))


def notification_cloudevent_json(n: Notification, source: str) -> bytes:
    """`n` as a structured-mode CloudEvent (`application/cloudevents+json`)."""
    return structured_json(_attributes(n, source), notification_json(n))


def notification_from_record(record: Record) -> Notification:
    """Decode a bus record; raises BusError (not a notification) or a pydantic
    ValidationError (one that does not validate)."""
    data = binary_json_data(record, NOTIFICATION_TYPE)
    if data is None:  # structured mode, or not a notification at all
        return notification_from_event(from_record(record))
    return Notification.model_validate_json(data)


def notification_from_event(event: BaseCloudEvent) -> Notification:
    if event.get_type() != NOTIFICATION_TYPE:
        raise BusError(f"not a notification event: {event.get_type()}", reason="schema")
    data = event.get_data()
    if isinstance(data, bytes | str):
        return Notification.model_validate_json(data)
    return Notification.model_validate(data)
