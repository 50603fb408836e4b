"""Decide's pipeline, one signature for every stage, like Alertmanager's `notify.Stage`:

    match -> thresholds -> remind -> beat -> hold -> clear -> page -> mute -> dedup -> group
      -> record -> admit

A stage takes the frozen `Context` (the time, taken once; the store transaction; the
subscription index; what changed) and the candidates so far, and returns the candidates for
the next stage. Every stage that touches the store does so with a constant number of
statements, however many subscriptions a revision matches (one per 500 keys where it names
them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from consumers.decide.index import Compiled, SubscriptionIndex
from consumers.decide.rules import Derived, View
from monitor.events import Condition, Severity
from monitor.notifications import EscalationRef, Notification, NotificationItem


@dataclass(frozen=True, slots=True)
class Candidate:
    """One transition one subscription may hear about, with its deterministic key."""

    sub: Compiled
    key: str
    severity: Severity
    item: NotificationItem
    # Set by `mute`: why it is recorded as suppressed instead of sent.
    muted: str | None = None
    # Set by `group`: when its batch leaves, and whether the batch is this item alone,
    # leaving now (logged closed: admit sends it without reading the log back).
    due_at: datetime | None = None
    alone: bool = False
    # Set by `escalate.page`: the run and step that page this subscription.
    escalation: EscalationRef | None = None


@dataclass(frozen=True)
class Grouping:
    # A new group waits this long for siblings before it leaves (0: the first goes at once).
    wait: timedelta = timedelta(0)
    # After a notification, more for the same subscriber wait this long and leave together.
    interval: timedelta = timedelta(seconds=60)
    # Items at or above this severity skip the interval (only `wait` holds them) and pull
    # their subscriber's pending batch forward: an EEA 3 never waits behind a Flex Alert.
    urgent: Severity = Severity.CRITICAL


@dataclass(frozen=True)
class Context:
    now: datetime
    conn: AsyncConnection
    index: SubscriptionIndex
    grouping: Grouping
    # What changed: each condition with the transitions derived for it.
    changes: tuple[tuple[Condition, tuple[Derived, ...]], ...] = ()
    # The new revision being decided (None for a tick): thresholds look at it.
    revision: Condition | None = None
    # Open views on a tick: reminders are due from these.
    active: tuple[tuple[View, Condition], ...] = ()
    # Conditions in effect now that may inhibit others (active EEA notices).
    inhibitors: tuple[Condition, ...] = ()
    # On a tick, the previous tick's time: heartbeats due in (since, now] go out.
    since: datetime | None = None
    # The sources capmon watches (a heartbeat counts those current).
    sources: tuple[str, ...] = ()
    # Filled by `admit`: notifications admitted to the ledger, to publish after commit.
    outbox: list[Notification] = dataclasses.field(default_factory=list)
    # Filled by `escalate.record`: the escalation runs this revision or tick started.
    runs_started: list[str] = dataclasses.field(default_factory=list)


Stage = Callable[[Context, list[Candidate]], Awaitable[list[Candidate]]]


async def run_pipeline(stages: Sequence[Stage], ctx: Context) -> list[Candidate]:
    cands: list[Candidate] = []
    for stage in stages:
        cands = await stage(ctx, cands)
    return cands
