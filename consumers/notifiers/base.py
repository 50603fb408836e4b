"""The one `Notifier` protocol every channel implements, and what a send returns.

A notifier knows its wire protocol and nothing else: it never touches the ledger, the bus, the
retry schedule or rate limits (the deliver pipeline does). It turns one delivery into an
`SendOutcome` whose `retriable` flag and bounded `reason` are decided where the failure is
understood, as Alertmanager's `Notify` returns `(recoverable, err)`. Outcomes and their
`detail` never carry a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from monitor.notifications import Notification
from monitor.store.endpoints import Endpoint


class EndpointAction(StrEnum):
    """What a failure says about the endpoint itself, beyond this one notification."""

    NONE = "none"
    DISABLE = "disable"  # webhook 410 Gone
    UNSUBSCRIBE = "unsubscribe"  # SMS recipient replied STOP (21610)
    INVALID_CONTACT = "invalid_contact"  # bad number, landline, unknown mailbox


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    retriable: bool
    # Bounded: ok, timeout, connect, server, client, auth, rate_limited, redirect, gone,
    # forbidden_address, invalid_contact, unsubscribed, blocked, aborted, config, provider.
    reason: str
    status_code: int | None = None
    provider_code: str | None = None
    # Seconds the receiver asked us to wait (Retry-After), if it said.
    retry_after: float | None = None
    # A provider's id for what was sent (Twilio SM... sid, SMTP Message-ID).
    provider_id: str | None = None
    detail: str = ""
    action: EndpointAction = EndpointAction.NONE

    @classmethod
    def delivered(cls, status_code: int | None = None, provider_id: str | None = None,
                  detail: str = "", provider_code: str | None = None) -> SendOutcome:
        return cls(ok=True, retriable=False, reason="ok", status_code=status_code,
                   provider_id=provider_id, detail=detail, provider_code=provider_code)

    @classmethod
    def failed(cls, reason: str, detail: str = "", *, retriable: bool,
               status_code: int | None = None, provider_code: str | None = None,
               retry_after: float | None = None,
               action: EndpointAction = EndpointAction.NONE) -> SendOutcome:
        return cls(ok=False, retriable=retriable, reason=reason, status_code=status_code,
                   provider_code=provider_code, retry_after=retry_after, detail=detail,
                   action=action)


@dataclass(frozen=True)
class Delivery:
    """One attempt to send one notification to one endpoint."""

    notification: Notification
    endpoint: Endpoint
    attempt_no: int
    now: datetime
    # An earlier try of this attempt number never settled (its process died mid-send): it
    # may have been sent. `known_ids`: the provider ids the ledger has for the notification,
    # by attempt number (those of earlier attempts are not this one's).
    unsettled: bool = False
    known_ids: Mapping[str, int] = field(default_factory=dict)


class Notifier(Protocol):
    channel: str

    async def start(self) -> None:
        """Open pools and clients (inside the running event loop)."""
        ...

    async def send(self, delivery: Delivery) -> SendOutcome:
        """Make one attempt; never raises for a delivery failure, only returns a SendOutcome."""
        ...

    async def send_endpoint_disabled(self, to: str, endpoint: Endpoint,
                                     why: str) -> SendOutcome | None:
        """Tell a tenant's admin contact `to` that deliver disabled `endpoint`, and why; None
        when this channel cannot carry such a notice."""
        ...

    async def close(self) -> None: ...
