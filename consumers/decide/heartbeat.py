"""Heartbeats: which subscribers' daily "capmon is watching" is due between two instants, and
what it says (pure functions; decide's ticker calls them and admits the result).

A subscription with `heartbeat: {"at": "08:00"}` hears, once per local day at that time,
"capmon is watching: 7 of 7 sources current" (or which sources capmon cannot see), so that a
missing heartbeat tells the subscriber capmon itself is down. The key is the subscription and
the local date: a tick that runs twice, late or after a restart never sends a second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.attributes import SourceHealthAttributes
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.notifications import NotificationItem, Transition, notification_key
from monitor.source_health import not_current
from monitor.subscriptions import Heartbeat
from monitor.wording import wording

HEARTBEAT_ID = "capmon.heartbeat"


@dataclass(frozen=True)
class DueHeartbeat:
    subscription_id: str
    at: datetime
    key: str
    item: NotificationItem

    @property
    def summary(self) -> str:
        return wording(self.item.condition, self.at).headline(Transition.HEARTBEAT)


def heartbeat_item(subscription_id: str, at: datetime, health: Iterable[Condition],
                   sources: Sequence[str]) -> NotificationItem:
    """The heartbeat as of `at` (in the subscriber's zone: its date is the key's): `sources`
    are those capmon watches; `health` the `source.health` conditions as the store has them
    (the open ones are not current)."""
    blind = sorted({b.source for b in not_current(health)})
    current = tuple(s for s in sources if s not in blind)
    condition = Condition(
        id=f"{HEARTBEAT_ID}:{subscription_id}", kind=Kind.SOURCE_HEALTH,
        severity=Severity.INFO, status=Status.ACTIVE, window=Window(start=at.astimezone(UTC)),
        attributes=SourceHealthAttributes(source="capmon", reason="heartbeat", current=current,
                                          not_current=tuple(blind)),
        revision=revision_at(at), observed_at=at.astimezone(UTC))
    local_day = at.date().isoformat()
    return NotificationItem(transition=Transition.HEARTBEAT, condition=condition,
                            facts={"date": local_day})


def heartbeats_due(subscriptions: Iterable[tuple[str, Heartbeat]], t0: datetime, t1: datetime,
                   health: Sequence[Condition], sources: Sequence[str]) -> list[DueHeartbeat]:
    """Every heartbeat due in (t0, t1], in time order, with its key and its words."""
    due = []
    for sub_id, beat in subscriptions:
        for at in beat.times_between(t0, t1):
            item = heartbeat_item(sub_id, at, health, sources)
            key = notification_key(sub_id, item.condition.id, Transition.HEARTBEAT, item.facts)
            due.append(DueHeartbeat(subscription_id=sub_id, at=at, key=key, item=item))
    return sorted(due, key=lambda d: (d.at, d.subscription_id))


def next_heartbeat(subscriptions: Iterable[tuple[str, Heartbeat]],
                   now: datetime) -> datetime | None:
    """The next instant after `now` a heartbeat falls due (for the ticker's wake-up)."""
    times = [t for _, beat in subscriptions
             for t in beat.times_between(now, now + timedelta(days=2))[:1]]
    return min(times, default=None)

