"""Decide's pipeline stages: match -> thresholds -> mute (quiet hours, inhibition) ->
dedup/group -> publish. Each stage is a small module; they pass typed, frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consumers.index import Compiled
from monitor.events import Condition, Severity
from monitor.notifications import NotificationItem


@dataclass(frozen=True, slots=True)
class Candidate:
    """One transition one subscription may hear about, with its deterministic key."""

    sub: Compiled
    key: str
    severity: Severity
    item: NotificationItem


@dataclass(frozen=True)
class Context:
    """What the mute stages see: the time, taken once, and the conditions that inhibit."""

    now: datetime
    # Conditions in effect now that may inhibit others (active EEA notices).
    inhibitors: tuple[Condition, ...] = ()
