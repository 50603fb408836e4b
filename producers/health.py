"""Whether capmon can see one source, as a `source.health:<source>` condition.

The one rule of staleness (everything else reads the conditions it produces):

- a source with no good poll *since this process started* is blind from its first failed poll
  at least `blind_after_s` after start (a short grace for a slow first answer), however long
  its interval: a fresh capmon that cannot reach caiso.com says so within a minute;
- a source that has worked since start is stale once `stale_after` of its own intervals pass
  without a good poll.

Either way the condition is `active` (severity warning) with the failure reason and its
words, revised only when the reason changes, and it ends with the first good poll. Before a
restart's first poll, `restore` adopts the condition stored by the previous run, so a source
that was blind stays reported (and is ended when it recovers) instead of being forgotten.
Used by the engine for polled sources and by the notice mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from monitor.attributes import SourceHealthAttributes
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from monitor.store import Store
from monitor.store import conditions as condition_store


def health_id(source_name: str) -> str:
    return f"source.health:{source_name}"


class SourceHealth:
    def __init__(self, source: str, interval_s: float, stale_after: int,
                 started_at: datetime, *, blind_after_s: float = 30.0) -> None:
        self.source = source
        self.interval_s = interval_s
        self.stale_after = stale_after
        self.started_at = started_at
        self.blind_after_s = blind_after_s
        self.last_success_at: datetime | None = None
        self.condition: Condition | None = None  # the last revision handed out

    @property
    def is_stale(self) -> bool:
        return self.condition is not None and self.condition.status is Status.ACTIVE

    def deadline(self) -> datetime:
        """When failures from now on make the source stale."""
        if self.last_success_at is None:
            return self.started_at + timedelta(seconds=self.blind_after_s)
        return self.last_success_at + timedelta(seconds=self.interval_s * self.stale_after)

    def missed_intervals(self, now: datetime) -> int:
        since = self.last_success_at or self.started_at
        return int((now - since).total_seconds() // self.interval_s)

    def restore(self, stored: Condition) -> None:
        """Adopt the revision the previous run left in the store (before any poll)."""
        if self.condition is None and stored.id == health_id(self.source):
            self.condition = stored

    def succeeded(self, now: datetime) -> Condition | None:
        """Record a good poll; the `ended` revision to publish if the source was stale."""
        self.last_success_at = now
        previous = self.condition
        if previous is None or previous.status is not Status.ACTIVE:
            return None
        return previous.model_copy(update={
            "status": Status.ENDED, "window": Window(start=previous.window.start, end=now),
            "revision": max(revision_at(now), previous.revision + 1), "observed_at": now})

    def failed(self, now: datetime, reason: str, error: str | None) -> Condition | None:
        """Record a failed poll; the `active` revision to publish when the source has just
        turned stale or its failure reason changed."""
        if now < self.deadline() and not self.is_stale:
            return None
        previous = self.condition
        attrs = previous.attributes if previous is not None else None
        if (self.is_stale and isinstance(attrs, SourceHealthAttributes)
                and attrs.reason == reason):
            return None
        since = self.last_success_at or self.started_at
        last_success = self.last_success_at
        if previous is not None and self.is_stale:
            # A new reason for the same blindness: it still began when it began.
            since = previous.window.start or since
            if isinstance(attrs, SourceHealthAttributes):
                last_success = last_success or attrs.last_success_at
        condition = Condition(
            id=health_id(self.source), kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
            status=Status.ACTIVE, window=Window(start=since),
            attributes=SourceHealthAttributes(
                source=self.source, reason=reason, missed_intervals=self.missed_intervals(now),
                last_success_at=last_success, last_error=error),
            revision=revision_at(now), observed_at=now, source_url=None)
        if previous is not None and condition.revision <= previous.revision:
            condition = condition.model_copy(update={"revision": previous.revision + 1})
        return condition

    def published(self, condition: Condition) -> None:
        """The condition reached the bus: it is now the one to revise."""
        self.condition = condition


async def stored_health(store: Store, sources: Iterable[str]) -> dict[str, Condition]:
    """The `source.health` condition of each source as the store has it (decide records them)."""
    found: dict[str, Condition] = {}
    async with store.connect() as conn:
        for name in sources:
            condition = await condition_store.get(conn, health_id(name))
            if condition is not None:
                found[name] = condition
    return found
