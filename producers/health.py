"""Staleness of one source as a `source.health:<source>` condition.

A source that has had no good poll for `stale_after` intervals turns stale: an `active`
condition (severity warning) carrying the failure reason, the missed intervals and the last
success. It is revised only when the reason changes, and ends with the first good poll. Used by
the engine for polled sources and by the notice mailbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.attributes import SourceHealthAttributes
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at


def health_id(source_name: str) -> str:
    return f"source.health:{source_name}"


class SourceHealth:
    def __init__(self, source: str, interval_s: float, stale_after: int,
                 started_at: datetime) -> None:
        self.source = source
        self.interval_s = interval_s
        self.stale_after = stale_after
        self.started_at = started_at
        self.last_success_at: datetime | None = None
        self.condition: Condition | None = None  # the last revision handed out

    @property
    def is_stale(self) -> bool:
        return self.condition is not None and self.condition.status is Status.ACTIVE

    def deadline(self) -> datetime:
        since = self.last_success_at or self.started_at
        return since + timedelta(seconds=self.interval_s * self.stale_after)

    def missed_intervals(self, now: datetime) -> int:
        since = self.last_success_at or self.started_at
        return int((now - since).total_seconds() // self.interval_s)

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
        if now < self.deadline():
            return None
        previous = self.condition
        if (previous is not None and previous.status is Status.ACTIVE
                and isinstance(previous.attributes, SourceHealthAttributes)
                and previous.attributes.reason == reason):
            return None
        since = self.last_success_at or self.started_at
        condition = Condition(
            id=health_id(self.source), kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
            status=Status.ACTIVE, window=Window(start=since),
            attributes=SourceHealthAttributes(
                source=self.source, reason=reason, missed_intervals=self.missed_intervals(now),
                last_success_at=self.last_success_at, last_error=error),
            revision=revision_at(now), observed_at=now, source_url=None)
        if previous is not None and condition.revision <= previous.revision:
            condition = condition.model_copy(update={"revision": previous.revision + 1})
        return condition

    def published(self, condition: Condition) -> None:
        """The condition reached the bus: it is now the one to revise."""
        self.condition = condition
