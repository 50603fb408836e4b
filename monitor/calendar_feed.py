"""A subscription's conditions as an iCalendar feed (RFC 5545), for the calendars schedulers
already live in: one VEVENT per DR event or grid notice with a window.

A condition keeps one UID for life, so a client updates the event it already shows instead of
adding another; SEQUENCE counts the changes of its window or cancellation (clients ignore a
revision whose SEQUENCE did not grow); a cancelled condition stays, with STATUS:CANCELLED, so
the event disappears from a client's view rather than silently lingering. Times are in
America/Los_Angeles with its VTIMEZONE, the zone CAISO and SCE announce in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard

from monitor.clock import PACIFIC
from monitor.events import Status
from monitor.store.calendar_feeds import Entry
from monitor.wording import Wording, wording

MEDIA_TYPE = "text/calendar"
# How often a client should fetch the feed again: about how quickly an EEA's window moves.
REFRESH = timedelta(minutes=15)
# How far back a feed reaches: the last month's events, for the scheduler's own records.
LOOKBACK = timedelta(days=31)


def uid(condition_id: str) -> str:
    """Stable per condition and opaque: a condition id carries source detail nobody needs."""
    return hashlib.sha256(condition_id.encode()).hexdigest()[:32] + "@capmon"


def render(entries: Sequence[Entry], *, name: str, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//capmon//grid conditions//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"capmon: {name}")
    cal.add("x-wr-timezone", "America/Los_Angeles")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")  # the same, for clients that read only this
    cal.add_component(_pacific())
    for entry in entries:
        cal.add_component(_event(entry, now))
    return bytes(cal.to_ical())


def _pacific() -> Timezone:
    """America/Los_Angeles as the two yearly rules in force since 2007. The library's own
    VTIMEZONE lists every transition as RDATEs, which common readers (dateutil, and so
    vobject; older Outlook) take for a zone without daylight time, putting every summer
    event an hour early."""
    tz = Timezone()
    tz.add("tzid", "America/Los_Angeles")
    # Onsets are wall-clock times of the zone itself, so they carry no tzinfo.
    daylight = datetime(2007, 3, 11, 2)  # noqa: DTZ001
    standard = datetime(2007, 11, 4, 2)  # noqa: DTZ001
    for part, start, month, day, name, before, after in (
            (TimezoneDaylight(), daylight, 3, "2SU", "PDT", -8, -7),
            (TimezoneStandard(), standard, 11, "1SU", "PST", -7, -8)):
        part.add("dtstart", start)
        part.add("rrule", {"freq": "yearly", "bymonth": month, "byday": day})
        part.add("tzname", name)
        part.add("tzoffsetfrom", timedelta(hours=before))
        part.add("tzoffsetto", timedelta(hours=after))
        tz.add_component(part)
    return tz


def _event(entry: Entry, now: datetime) -> Event:
    c = entry.condition
    start, end = c.window.start, c.window.end
    assert start is not None  # the feed lists windowed conditions only
    words = wording(c, now)
    ev = Event()
    ev.add("uid", uid(c.id))
    ev.add("dtstamp", now)
    ev.add("last-modified", c.observed_at)
    ev.add("sequence", entry.sequence)
    ev.add("dtstart", start.astimezone(PACIFIC))
    # An open end (SCE's "TBD") is left out: the event is then an instant at its start, and
    # the summary says the end is not known rather than inventing one.
    if end is not None:
        ev.add("dtend", end.astimezone(PACIFIC))
    ev.add("summary", words.label + ("" if end is not None else " (end TBD)"))
    ev.add("description", "\n".join(_details(entry, words)))
    ev.add("status", "CANCELLED" if c.status == Status.CANCELLED else "CONFIRMED")
    ev.add("transp", "TRANSPARENT")  # a grid alert does not make anyone busy
    ev.add("categories", [c.kind.value, c.severity.value])
    if words.where.places:
        ev.add("location", words.where.text())
    if c.source_url:
        ev.add("url", c.source_url)
    return ev


def _details(entry: Entry, words: Wording) -> list[str]:
    c = entry.condition
    # No status word: the store's is the source's last report, and a calendar read later
    # would show an event long over as "active". The window and STATUS say it.
    lines = [f"{words.label}, severity {c.severity.value}", words.when.long()]
    lines += [words.reference, *words.extras, *words.details]
    if words.where.places:
        lines.append("Where: " + words.where.text())
    return [line for line in lines if line]
