"""Delivery policy shared by the deliver role and the API's provider callbacks.

- The retry schedule (Svix's: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with
  jitter, and how `Retry-After` bends it.
- Twilio's error codes and what each means for the message and for the contact.
- The dead-letter record published to `capmon.notifications.dlq.v1`.

They live in monitor/ because Twilio's asynchronous failures arrive at the API (status
callbacks), which must apply the same rules as the notifier that saw a synchronous one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor import ledger
from monitor.envelope import make_event
from monitor.notifications import Notification, VoiceChannel
from monitor.store import endpoints
from monitor.store import subscriptions as sub_store

# Delay before attempt n+1 (index n-1 after attempt n); attempt 1 is immediate.
RETRY_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE_S)
JITTER = 0.2  # +-20 %: retries of many notifications after one outage don't arrive in step

DLQ_TYPE = "capmon.notification.dead.v1"


def retry_delay(attempts_made: int, *, retry_after: float | None = None,
                max_retry_after_s: float = 3600.0,
                rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts; None when exhausted.

    A receiver's Retry-After replaces the scheduled delay (the receiver knows best when it
    can take traffic again), bounded by `max_retry_after_s` so a bogus value can't park a
    notification for days; the attempt still counts toward the eight.
    """
    if attempts_made >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        return min(max(retry_after, 0.0), max_retry_after_s)
    base = RETRY_SCHEDULE_S[attempts_made - 1] if attempts_made >= 1 else 0.0
    r = rng or random
    return base * (1 + r.uniform(-JITTER, JITTER))


def next_attempt_at(now: datetime, attempts_made: int, **kw: Any) -> datetime | None:
    delay = retry_delay(attempts_made, **kw)
    return None if delay is None else now + timedelta(seconds=delay)


# -- Twilio error codes (the table in docs/deliver.md) -----------------------------------------

@dataclass(frozen=True)
class TwilioCode:
    retriable: bool
    reason: str
    # "invalid_contact", "unsubscribe" or "" (the contact is fine)
    contact: str = ""


TWILIO_CODES: dict[int, TwilioCode] = {
    21211: TwilioCode(False, "invalid_contact", "invalid_contact"),
    21610: TwilioCode(False, "unsubscribed", "unsubscribe"),
    21614: TwilioCode(False, "invalid_contact", "invalid_contact"),
    21608: TwilioCode(False, "config"),
    20003: TwilioCode(True, "auth"),
    20429: TwilioCode(True, "rate_limited"),
    30003: TwilioCode(True, "unreachable"),
    30004: TwilioCode(False, "blocked", "invalid_contact"),
    30005: TwilioCode(False, "invalid_contact", "invalid_contact"),
    30006: TwilioCode(False, "invalid_contact", "invalid_contact"),
    30007: TwilioCode(False, "filtered"),
    30008: TwilioCode(True, "provider"),
    # Calls: a number Twilio cannot dial, and one outside the account's geographic
    # permissions (a setting of the account, not the contact).
    21217: TwilioCode(False, "invalid_contact", "invalid_contact"),
    21215: TwilioCode(False, "config"),
}


def twilio_code(code: int | None, http_status: int | None = None) -> TwilioCode:
    """What a Twilio error means; unknown codes fall back on the HTTP status."""
    if code is not None and code in TWILIO_CODES:
        return TWILIO_CODES[code]
    if http_status == 429:
        return TwilioCode(True, "rate_limited")
    if http_status is None or http_status >= 500:
        return TwilioCode(True, "provider")
    if http_status in (401, 403):
        return TwilioCode(True, "auth")
    return TwilioCode(False, "client")


# -- an SMS that Twilio accepted but could not deliver -----------------------------------------

@dataclass(frozen=True)
class LateFailure:
    """What a provider's late word did to an attempt it had accepted (a text undelivered, a
    call unanswered)."""

    notification: Notification
    dead: bool
    reason: str
    error: str
    attempts: int


async def fail_accepted_sms(conn: AsyncConnection, key: str, attempt_no: int,
                            code: str | None, now: datetime, *,
                            max_retry_after_s: float = 3600.0) -> LateFailure | None:
    """Apply an asynchronous Twilio failure (30003-30008...) to the ledger and the contact.

    Only if that message is still the notification's latest, delivered attempt: a later
    attempt or a replay has taken over otherwise. The caller publishes the dead letter.
    """
    meaning = twilio_code(int(code) if code and code.isdigit() else None, None)
    entry = await ledger.get(conn, key)
    if entry is None or entry.state != ledger.State.DELIVERED or entry.attempt_count != attempt_no:
        return None
    error = f"{meaning.reason}: Twilio {code or 'unknown error'} after acceptance"
    nxt = (next_attempt_at(now, entry.attempt_count - entry.attempt_base,
                           max_retry_after_s=max_retry_after_s)
           if meaning.retriable else None)
    if not await ledger.undeliver(conn, key, attempt_no, now, next_attempt_at=nxt, error=error):
        return None
    if meaning.contact == "unsubscribe":
        await endpoints.opt_out(conn, entry.subscription_id, f"{meaning.reason}: Twilio {code}",
                                now)
    elif meaning.contact:
        await sub_store.set_status(conn, entry.subscription_id, sub_store.DISABLED, now,
                                   reason=f"{meaning.reason}: Twilio {code}")
    return LateFailure(entry.notification(), dead=nxt is None, reason=meaning.reason,
                      error=error, attempts=entry.attempt_count)


# -- a call that Twilio placed but nobody answered ------------------------------------------

async def fail_accepted_call(conn: AsyncConnection, key: str, attempt_no: int, status: str,
                             code: str | None, now: datetime) -> LateFailure | None:
    """Apply a call's busy, no-answer, failed or canceled end to the ledger: called again
    after its channel's `retry_interval` while its `retries` last, else dead. An ErrorCode
    Twilio gives is read in the Twilio table (a number it cannot dial is not called again,
    and disables the subscription). Only if that call is still the key's latest, delivered
    attempt; the caller publishes the dead letter."""
    entry = await ledger.get(conn, key)
    if entry is None or entry.state != ledger.State.DELIVERED or entry.attempt_count != attempt_no:
        return None
    channel = entry.notification().channel
    meaning = (twilio_code(int(code), None) if code and code.isdigit()
               else TwilioCode(True, status.replace("-", "_")))
    error = f"{meaning.reason}: call {status}" + (f", Twilio {code}" if code else "")
    made = entry.attempt_count - entry.attempt_base
    retries = channel.retries if isinstance(channel, VoiceChannel) else 0
    nxt = (now + timedelta(seconds=channel.retry_interval_s)
           if meaning.retriable and isinstance(channel, VoiceChannel) and made <= retries
           else None)
    if not await ledger.undeliver(conn, key, attempt_no, now, next_attempt_at=nxt, error=error):
        return None
    if meaning.contact:
        await sub_store.set_status(conn, entry.subscription_id, sub_store.DISABLED, now,
                                   reason=f"{meaning.reason}: Twilio {code}")
    return LateFailure(entry.notification(), dead=nxt is None, reason=meaning.reason,
                      error=error, attempts=entry.attempt_count)


# -- dead letters -----------------------------------------------------------------------------

def dead_letter_event(n: Notification, *, reason: str, error: str | None, attempts: int,
                      at: datetime) -> BaseCloudEvent:
    """The DLQ record: the whole notification plus why it was given up (no secrets)."""
    return make_event(
        event_id=f"{n.key}.{attempts}", source="/capmon/deliver", type_=DLQ_TYPE,
        subject=n.key, time=at,
        data={"notification": n.model_dump(mode="json"), "reason": reason,
              "error": error, "attempts": attempts, "dead_at": at.isoformat()},
        extensions={"severity": n.severity.value})
