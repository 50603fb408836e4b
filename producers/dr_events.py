"""Utility demand-response events, whatever the utility: one model, one lifecycle.

A `DrEventSource` (SCE today; PG&E and SDG&E later) fetches one snapshot of the events its
utility lists now and returns them as `DrEvent`s. `DrProducer` adapts any of them to the
engine's `Source` protocol: it turns events into `sce.dr_event`-style conditions, derives each
status from what is listed and the time, and closes events that disappear (cancelled before
their start, ended after it). Adding a utility means writing one `DrEventSource`; nothing here
or in the engine changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal, Protocol

from monitor.attributes import DrEventAttributes
from monitor.events import Condition, Kind, Severity, Status, Window, revision_at
from producers.source import Fetcher, PollResult, Schedule

CustomerClass = Literal["residential", "commercial", "all"]
Listed = Literal["active", "scheduled"]
Channel = Literal["json", "html", "history", "replay"]


@dataclass(frozen=True)
class DrEvent:
    """One DR event as a utility lists it, normalized (times timezone-aware, local)."""

    utility: str
    program: str
    product: str | None
    severity: Severity
    interruptible: bool
    customer_class: CustomerClass | None
    # Which list the site shows it in now; None for history records (always ended).
    listed: Listed | None
    start: datetime | None
    end: datetime | None  # None: unknown (SCE's "TBD")
    channel: Channel
    estimated_end: bool = False
    event_key: str | None = None
    uuid: str | None = None
    location_type: str | None = None
    locations: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    sublaps: tuple[str, ...] = ()
    zips: tuple[str, ...] = ()
    location_resolved: bool = True
    regions: tuple[str, ...] = ()  # the control area (e.g. "SCE-TAC"); SubLAPs/ZIPs are added
    issued_at: datetime | None = None
    notice: Literal["day_ahead", "day_of"] | None = None
    aggregators: tuple[str, ...] = ()
    trigger: str | None = None
    test_event: bool = False
    comments: str | None = None
    source_url: str | None = None
    event_date: date | None = None  # the local day, for history records without times
    detail_url: str | None = None  # where the site lists the event's locations
    key: str = field(default="")  # set by with_key()

    def with_key(self, key: str) -> DrEvent:
        return replace(self, key=key)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.+-]+", "_", text.strip().lower()).strip("_") or "x"


def derived_key(ev: DrEvent) -> str:
    """A key for events the site gives no id for: program, product, start and location.

    Stable across polls as long as those four are; a moved start is a new event (and the old
    one is cancelled), which is also how the site itself treats a rescheduled event.
    """
    if ev.start is not None:
        start = ev.start.strftime("%Y%m%dt%H%M")
    else:
        start = ev.event_date.strftime("%Y%m%d") if ev.event_date else "tbd"
    where = ",".join(ev.blocks or ev.locations) or "all"
    kind = (ev.location_type or "loc").lower()
    loc = f"{kind}-{_slug(where)}"
    if len(loc) > 60:
        loc = f"{kind}-{hashlib.sha256(where.encode()).hexdigest()[:16]}"
    return f"{_slug(ev.program)}.{_slug(ev.product or '-')}.{start}.{loc}"


def site_key(ev: DrEvent) -> str:
    """The id key: the site's event key or uuid where it has one, else a derived key."""
    for value in (ev.event_key, ev.uuid):
        if value and value.strip():
            return re.sub(r"\s+", "_", value.strip())[:250]
    return derived_key(ev)


def condition_id(utility: str, key: str) -> str:
    return f"{utility.lower()}.dr:{key}"


def status_at(ev: DrEvent, now: datetime) -> Status:
    """The status an event has at `now`, from the list it is in and its window.

    A scheduled event whose start has passed while it is still listed is active; a listed event
    whose firm end has passed has ended (an estimated end, like SDP's, does not end it).
    """
    if ev.listed is None:
        return Status.ENDED
    if ev.end is not None and not ev.estimated_end and ev.end <= now:
        return Status.ENDED
    if ev.listed == "active":
        return Status.ACTIVE
    if ev.start is not None and ev.start <= now:
        return Status.ACTIVE
    return Status.SCHEDULED


def to_condition(ev: DrEvent, now: datetime, *, observed_at: datetime | None = None,
                 revision: int | None = None, kind: Kind = Kind.SCE_DR_EVENT) -> Condition:
    key = ev.key or site_key(ev)
    observed = observed_at or now
    regions = {*ev.regions, *ev.sublaps, *ev.zips}
    return Condition(
        id=condition_id(ev.utility, key),
        kind=kind,
        severity=ev.severity,
        status=status_at(ev, now),
        window=Window(start=ev.start, end=ev.end),
        regions=tuple(regions),
        attributes=DrEventAttributes(
            utility=ev.utility, program=ev.program, product=ev.product,
            customer_class=ev.customer_class, interruptible=ev.interruptible,
            event_key=ev.event_key, uuid=ev.uuid, location_type=ev.location_type,
            locations=ev.locations, blocks=ev.blocks, sublaps=ev.sublaps, zips=ev.zips,
            location_resolved=ev.location_resolved, estimated_end=ev.estimated_end,
            issued_at=ev.issued_at, notice=ev.notice, aggregators=ev.aggregators,
            trigger=ev.trigger, test_event=ev.test_event, comments=ev.comments,
            event_date=ev.event_date or (ev.start.date() if ev.start else None),
            channel=ev.channel),
        revision=revision if revision is not None else revision_at(observed),
        observed_at=observed,
        source_url=ev.source_url,
    )


def closed(last: Condition, now: datetime) -> Condition:
    """The revision of an open event that is no longer listed.

    Gone before its start: cancelled. Otherwise it has ended: at its listed end if that has
    passed, else now (terminated early, or a `TBD` end that never became known), and the end
    is marked as inferred from the disappearance.
    """
    start, end = last.window.start, last.window.end
    attrs = last.attributes
    assert isinstance(attrs, DrEventAttributes)
    if start is not None and now < start:
        return last.model_copy(update={"status": Status.CANCELLED, "observed_at": now,
                                       "revision": revision_at(now)})
    inferred = end is None or end > now
    window = Window(start=start, end=now if inferred else end)
    return last.model_copy(update={
        "status": Status.ENDED, "window": window, "observed_at": now,
        "revision": revision_at(now),
        "attributes": attrs.model_copy(update={"end_inferred": inferred}),
    })


@dataclass(frozen=True)
class Snapshot:
    """Every event a utility lists now. `url` is where it was read (for source_url)."""

    events: tuple[DrEvent, ...]
    url: str


class DrEventSource(Protocol):
    """One utility's DR event feed. Raise FetchError/ParseError; never return a partial list."""

    utility: str

    async def snapshot(self, fetch: Fetcher, now: datetime) -> Snapshot:
        ...


class DrProducer:
    """The engine `Source` for any `DrEventSource`: conditions, status by time, disappearance.

    `kind` is the condition kind the utility's events are published as (`sce.dr_event` is
    the only one so far; another utility adds its kind to monitor.events.Kind).
    """

    def __init__(self, name: str, topic: str, schedule: Schedule, events: DrEventSource,
                 kind: Kind = Kind.SCE_DR_EVENT) -> None:
        self.name = name
        self.topic = topic
        self.schedule = schedule
        self.events = events
        self.kind = kind

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        snap = await self.events.snapshot(fetch, now)
        conditions = conditions_of(snap.events, now, kind=self.kind)
        # Every poll lists every open event of the utility, so what is missing has gone.
        return PollResult(conditions=tuple(conditions), complete=True)

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return closed(last, now)


def conditions_of(events: tuple[DrEvent, ...] | list[DrEvent], now: datetime,
                  *, observed_at: datetime | None = None,
                  kind: Kind = Kind.SCE_DR_EVENT) -> list[Condition]:
    """Conditions for a snapshot; one per id (an event listed twice counts once, active first)."""
    by_id: dict[str, Condition] = {}
    for ev in keyed(events):
        c = to_condition(ev, now, observed_at=observed_at, kind=kind)
        prior = by_id.get(c.id)
        if prior is None or (prior.status is not Status.ACTIVE and c.status is Status.ACTIVE):
            by_id[c.id] = c
    return list(by_id.values())


def keyed(events: tuple[DrEvent, ...] | list[DrEvent]) -> list[DrEvent]:
    """Give every event its key; derived keys that collide get an ordinal in list order."""
    out: list[DrEvent] = []
    seen: dict[tuple[str, str | None], int] = {}
    for ev in events:
        key = ev.key or site_key(ev)
        if not (ev.key or ev.event_key or ev.uuid):
            # Two rows of one list with the same derived key are two events (SDP APS and
            # APS-E on a page without a Product column); one row in both lists is one event.
            n = seen.get((key, ev.listed), 0)
            seen[(key, ev.listed)] = n + 1
            if n:
                key = f"{key}.{n + 1}"
        out.append(ev.with_key(key))
    return out
