"""What capmon knows of its own sight: which sources there are, what a person calls them,
which are enabled, and which it cannot see now.

A source is *not current* exactly while its `source.health:<source>` condition is open; the
rule that opens and ends those conditions is in producers/health.py. `/readyz`, the status
page, the API and the heartbeat all read the conditions, merged from two places: the store
(what decide recorded, whichever process polled) and this process's `HealthBoard` (what its
own producers published a moment ago, and which sources it polls at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.attributes import SourceHealthAttributes
from monitor.config import Settings
from monitor.events import Condition, Kind
from monitor.store import Store
from monitor.store import conditions as condition_store

HEALTH_PREFIX = "source.health:"
MAILBOX = "caiso-notices"
# Every source capmon has (the names are the producers' and the metrics' `source` label),
# as a person reading an alert calls it.
SOURCE_LABELS: dict[str, str] = {
    "caiso-stats": "CAISO Today's Outlook",
    "caiso-demand": "CAISO demand",
    "caiso-flex": "CAISO Flex Alerts",
    "caiso-oasis": "CAISO OASIS forecasts",
    "caiso-ra-outlook": "CAISO RA outlook",
    MAILBOX: "CAISO notices",
    "sce-dr": "SCE DR events",
}


# The sources the engine polls (the mailbox is read only when one is configured).
POLLED_SOURCES = tuple(n for n in SOURCE_LABELS if n != MAILBOX)


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source)


def enabled_sources(settings: Settings) -> tuple[str, ...]:
    """The sources the settings have capmon watch: `sources.enabled` (empty: all polled
    sources), and CAISO's notices when a mailbox or a notice feed is configured."""
    wanted = set(settings.sources.enabled)
    names = [n for n in POLLED_SOURCES if not wanted or n in wanted]
    reads_mail = bool(settings.imap.host or settings.sources.notice_feed_url)
    if reads_mail and (not wanted or MAILBOX in wanted):
        names.append(MAILBOX)
    return tuple(names)


@dataclass
class HealthBoard:
    """This process's producers: the sources they poll, and the health revision each
    published last."""

    polled: set[str] = field(default_factory=set)
    latest: dict[str, Condition] = field(default_factory=dict)

    def polling(self, sources: Iterable[str]) -> None:
        self.polled.update(sources)

    def report(self, condition: Condition) -> None:
        held = self.latest.get(condition.id)
        if held is None or condition.revision >= held.revision:
            self.latest[condition.id] = condition


@dataclass(frozen=True)
class Blind:
    """One source capmon cannot see now."""

    source: str
    label: str
    since: datetime | None
    reason: str
    why: str
    last_success_at: datetime | None


def merge(*sources: Iterable[Condition]) -> list[Condition]:
    """One revision per condition id: the newest of those given."""
    newest: dict[str, Condition] = {}
    for group in sources:
        for c in group:
            held = newest.get(c.id)
            if held is None or c.revision > held.revision:
                newest[c.id] = c
    return list(newest.values())


def not_current(conditions: Iterable[Condition]) -> list[Blind]:
    """The sources whose health condition is open, by label."""
    out = []
    for c in conditions:
        a = c.attributes
        if (c.kind != Kind.SOURCE_HEALTH or not c.id.startswith(HEALTH_PREFIX)
                or not c.status.is_open or not isinstance(a, SourceHealthAttributes)):
            continue
        out.append(Blind(source=a.source, label=source_label(a.source), since=c.window.start,
                         reason=a.reason, why=a.last_error or a.reason,
                         last_success_at=a.last_success_at))
    return sorted(out, key=lambda b: b.label)


async def health_conditions(conn: AsyncConnection) -> list[Condition]:
    """Every `source.health` condition in the store, whatever its status."""
    found = await condition_store.list_conditions(conn, kinds=(Kind.SOURCE_HEALTH,), limit=500)
    return [c for c in found if c.id.startswith(HEALTH_PREFIX)]


async def stored_health(store: Store) -> list[Condition]:
    async with store.connect() as conn:
        return await health_conditions(conn)


async def current_health(store: Store, board: HealthBoard,
                         timeout_s: float = 5.0) -> list[Condition]:
    """The health conditions as this process best knows them. An unreachable store leaves
    the board's (the readiness probe reports the store on its own)."""
    try:
        stored = await asyncio.wait_for(stored_health(store), timeout_s)
    except Exception:  # any driver error: what this process saw is still true
        stored = []
    return merge(stored, board.latest.values())
