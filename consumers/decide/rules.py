"""Transitions: compare what decide last derived for a condition with what is true now.

Alerts are level-derived, not edge-guessed: a condition's *view* (its effective status with
the clock applied, and the facts subscribers hear about) is stored; a new revision or the
passing of time yields a new view, and the difference between the two is the transitions.
Re-deriving from the same stored view gives the same transitions and the same keys, so a
restart or a redelivered revision never alerts anyone twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.attributes import NoticeAttributes
from monitor.events import Condition
from monitor.notifications import Transition

OPEN = frozenset({"scheduled", "active"})
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class View:
    condition_id: str
    kind: str
    status: str
    facts: dict[str, Any]
    revision: int
    changed_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class Derived:
    """One transition of one condition, before it meets any subscription."""

    transition: Transition
    # What defines the transition: goes into the notification key (never times of observation).
    key_facts: dict[str, Any] = field(default_factory=dict)
    # What a subscriber is told about it (e.g. the previous window on "updated").
    facts: dict[str, Any] = field(default_factory=dict)


def effective_status(c: Condition, now: datetime) -> str:
    """The status with the clock applied: a window that has passed has ended."""
    status = c.status.value
    if status in OPEN:
        if c.window.end is not None and c.window.end <= now:
            return "ended"
        if status == "scheduled" and c.window.start is not None and c.window.start <= now:
            return "active"
    return status


def facts_of(c: Condition) -> dict[str, Any]:
    """What subscribers hear about; a change of any of these is an `updated` transition."""
    attrs = c.attributes
    level = attrs.level if isinstance(attrs, NoticeAttributes) else None
    return {
        "severity": c.severity.value,
        "level": level,
        "window_start": c.window.start.isoformat() if c.window.start else None,
        "window_end": c.window.end.isoformat() if c.window.end else None,
        "regions": list(c.regions),
    }


def derive(prev: View | None, c: Condition, now: datetime) -> tuple[View, list[Derived]]:
    """The new view of `c` at `now` and the transitions from `prev` to it."""
    status = effective_status(c, now)
    facts = facts_of(c)
    out: list[Derived] = []
    if prev is None:
        if status in OPEN:
            out.append(Derived(Transition.ISSUED, facts={"status": status}))
    elif prev.status in OPEN:
        if status == "ended":
            out.append(Derived(Transition.ENDED))
        elif status == "cancelled":
            out.append(Derived(Transition.CANCELLED))
        else:
            if prev.status == "scheduled" and status == "active":
                out.append(Derived(Transition.STARTED))
            if facts != prev.facts:
                out.append(Derived(Transition.UPDATED, key_facts=facts,
                                   facts={"previous": prev.facts}))
    elif status in OPEN:
        # Re-opened after it ended: news, keyed by what it now says.
        out.append(Derived(Transition.UPDATED, key_facts={**facts, "reopened": True},
                           facts={"previous": prev.facts, "reopened": True}))
    changed_at = prev.changed_at if prev is not None else c.observed_at
    if out:
        changed_at = _change_time(prev, c, out, now)
    revision = c.revision if prev is None else max(prev.revision, c.revision)
    view = View(condition_id=c.id, kind=c.kind.value, status=status, facts=facts,
                revision=revision, changed_at=changed_at)
    return view, out


def _change_time(prev: View | None, c: Condition, out: list[Derived], now: datetime) -> datetime:
    # A change the clock made happened at the window boundary, not whenever decide noticed,
    # so reminders count from the same instant however late the tick ran.
    if prev is not None and c.revision == prev.revision:
        kinds = {d.transition for d in out}
        if Transition.ENDED in kinds and c.window.end is not None:
            return c.window.end
        if Transition.STARTED in kinds and c.window.start is not None:
            return c.window.start
        return now
    return c.observed_at


def reminder_period(view: View, now: datetime, every_s: float) -> int:
    """How many whole repeat intervals have passed since the view last changed (0: none)."""
    if every_s <= 0 or view.status != "active":
        return 0
    return int((now - view.changed_at).total_seconds() // every_s)


def superseded_ids(c: Condition) -> list[str]:
    """Other condition ids this revision supersedes (CAISO notices name them by number).

    Never `c.id` itself: the CAISO producer files a superseding notice as a new revision of
    the condition it supersedes (the same event, with its new window), so its `supersedes`
    names its own id; that is an `updated`, not a reason to close the condition, which still
    owes its subscribers reminders and an all-clear."""
    attrs = c.attributes
    if not isinstance(attrs, NoticeAttributes):
        return []
    ids = (s if ":" in s else f"caiso.notice:{s}" for s in attrs.supersedes)
    return [i for i in dict.fromkeys(ids) if i != c.id]
