"""What the ledger holds: a notification's `State`, its row as read back (`LedgerEntry`), a
claim, and the verdicts a sender settles a claim with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from monitor.notifications import Notification


class State(StrEnum):
    """pending -> sending -> delivered | failed (retry due later) | dead (gave up);
    suppressed: decided but never sent (quiet hours, inhibition, an inactive subscription).
    A replay puts dead, failed or delivered back to pending."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    SUPPRESSED = "suppressed"


SETTLED = frozenset({State.DELIVERED, State.DEAD, State.SUPPRESSED})
# States a sender may claim once `next_attempt_at` is reached (for `sending`, that time is
# the lease: its sender died mid-send).
CLAIMABLE = (State.PENDING, State.FAILED, State.SENDING)
REPLAYABLE = (State.DEAD, State.FAILED, State.DELIVERED)
# A key admitted by decide or the API is handed to deliver on the bus; for this long it is
# the bus consumer's to claim, and only then due for deliver's scheduler (its record was
# lost: a crash between commit and publish, or the embedded bus restarted). Without it the
# scheduler would race the consumer for every fresh key.
HANDOFF = timedelta(seconds=30)


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    tenant_id: str
    subscription_id: str
    channel: str
    state: State
    attempt_count: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    # attempt_count when the retry schedule last restarted (a replay); the schedule position
    # is attempt_count - attempt_base.
    attempt_base: int = 0

    def notification(self) -> Notification:
        return Notification.model_validate(self.payload)


@dataclass(frozen=True)
class Claim:
    """A key this sender now holds under a lease: attempts made so far, and at the last replay.

    `unsettled`: the key was taken while still `sending`, its previous claim never settled (its
    sender died, or stopped with the claim unsettled, or the lease ran out): the attempt that
    claim made may have reached the provider, and nobody knows. Read for SMS claims only
    (the one channel that acts on it).
    """

    key: str
    attempt_count: int
    attempt_base: int
    unsettled: bool = False


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt as the attempts table keeps it."""

    number: int
    at: datetime
    channel: str
    outcome: str  # delivered, retry, failed, exhausted
    status_code: int | None = None
    provider_error: str | None = None
    error: str | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class Verdict:
    """How a claim ends: the state it settles in, when to try again, and the attempt made (none
    for a deferral or a withheld send). Build one with the named constructors."""

    key: str
    state: State
    at: datetime
    next_attempt_at: datetime | None = None
    error: str | None = None
    attempt: AttemptRecord | None = None

    @classmethod
    def delivered(cls, key: str, at: datetime, attempt: AttemptRecord) -> Verdict:
        return cls(key, State.DELIVERED, at, attempt=attempt)

    @classmethod
    def retry(cls, key: str, at: datetime, attempt: AttemptRecord, next_at: datetime,
              error: str | None) -> Verdict:
        return cls(key, State.FAILED, at, next_at, error, attempt)

    @classmethod
    def dead(cls, key: str, at: datetime, attempt: AttemptRecord, error: str | None) -> Verdict:
        return cls(key, State.DEAD, at, error=error, attempt=attempt)

    @classmethod
    def deferred(cls, key: str, at: datetime, until: datetime, why: str) -> Verdict:
        """Not attempted (circuit open, rate limited): pending again at `until`."""
        return cls(key, State.PENDING, at, until, why)

    @classmethod
    def withheld(cls, key: str, at: datetime, why: str) -> Verdict:
        """Not attempted and never will be (the subscription is inactive or gone)."""
        return cls(key, State.SUPPRESSED, at, error=why)
