"""What a condition says, written once for every channel.

`wording(condition, now)` is a condition's `Wording`: its label ("CAISO EEA 3", "SCE BIP
event"), when (Pacific time, with the year when it is not the reader's year), where (regions,
sub-LAPs, "all CAISO"), its reference ("#202202696") and the figures that are news. SMS, email,
decide's summaries (the webhook's `summary`), the status page and the detail page only format
it; none of them reads a kind's attributes. The kinds are worded in one place, `_worded`, one
function per attribute model: a new kind is worded there and nowhere else.

`now` is when the words are read: a notification's `decided_at` (so a retry says the same),
the status page's clock. `public_line` and `public_summary` are what a stranger may read: a
condition is public grid information, but a notification's facts (a subscription's threshold
level) and its subscription's name belong to the tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import singledispatch

from monitor.attributes import (
    DemandAttributes,
    DrEventAttributes,
    KindAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    SourceHealthAttributes,
    StatusAttributes,
)
from monitor.clock import PACIFIC
from monitor.events import CAISO_GRID, Condition, Kind
from monitor.notifications import Notification, NotificationItem, Transition
from monitor.source_health import source_label

TEST_TEXT = "capmon test notification"
_ALL_CAISO = "all CAISO"
_EN_DASH = "\u2013"

VERB = {
    Transition.ISSUED: "issued", Transition.UPDATED: "updated", Transition.STARTED: "in effect",
    Transition.ENDED: "ended, all clear", Transition.CANCELLED: "cancelled, all clear",
    Transition.REMINDER: "still in effect", Transition.TEST: "test",
    Transition.HEARTBEAT: "heartbeat",
}
# Once a condition is over, its window and its figures are no longer news; a day (a forecast's
# trade date) still says which one it was.
_CLOSING = (Transition.ENDED, Transition.CANCELLED)


def pacific(t: datetime, *, with_day: bool = True) -> str:
    """The long form of an instant: "Tue Sep 6 2022, 17:17 PDT" (or "17:17 PDT")."""
    local = t.astimezone(PACIFIC)
    return f"{local:%a %b %-d %Y, %H:%M} {local.tzname()}" if with_day else (
        f"{local:%H:%M} {local.tzname()}")


def long_day(d: date) -> str:
    return f"{d:%a %b %-d %Y}"


@dataclass(frozen=True)
class When:
    """A window in Pacific time: start and end (either may be unknown), or a day alone (a
    forecast's trade date, a history record without times)."""

    start: datetime | None = None
    end: datetime | None = None
    day: date | None = None
    # Not the reader's year, or a window across New Year: the short form says the year.
    year: bool = False

    @property
    def known(self) -> bool:
        return self.start is not None or self.end is not None or self.day is not None

    def at(self, t: datetime) -> str:
        """One instant in the short form: "9/6 09:47 PT"."""
        return f"{self._date(t)} {_hm(t)} PT"

    def _date(self, t: datetime | date) -> str:
        local = t.astimezone(PACIFIC).date() if isinstance(t, datetime) else t
        text = f"{local.month}/{local.day}"
        return f"{text}/{local.year}" if self.year else text

    def short(self) -> str:
        """"9/6 17:17-20:00 PT", "9/6 16:00-TBD PT", "until 9/6 20:00 PT", "9/7", or ""."""
        start, end = self.start, self.end
        if start is None and end is None:
            return self._date(self.day) if self.day is not None else ""
        if start is None:
            assert end is not None
            return f"until {self.at(end)}"
        head = f"{self._date(start)} {_hm(start)}"
        if end is None:
            return f"{head}-TBD PT"
        if self._date(start) == self._date(end):
            return f"{head}-{_hm(end)} PT"
        return f"{head}-{self._date(end)} {_hm(end)} PT"

    def long(self) -> str:
        """"Tue Sep 6 2022, 17:17 PDT - 20:00 PDT" (an en dash), "... - end TBD",
        "Wed Sep 7 2022", or ""."""
        start, end = self.start, self.end
        if start is None and end is None:
            return long_day(self.day) if self.day is not None else ""
        if start is None:
            assert end is not None
            return f"until {pacific(end)}"
        if end is None:
            return f"{pacific(start)} {_EN_DASH} end TBD"
        same_day = start.astimezone(PACIFIC).date() == end.astimezone(PACIFIC).date()
        return f"{pacific(start)} {_EN_DASH} {pacific(end, with_day=not same_day)}"


def _hm(t: datetime) -> str:
    return f"{t.astimezone(PACIFIC):%H:%M}"


@dataclass(frozen=True)
class Where:
    """The places a condition covers, as a person names them ("all CAISO", "SCEC")."""

    places: tuple[str, ...] = ()

    def text(self, limit: int | None = None, sep: str = ", ") -> str:
        shown = self.places if limit is None else self.places[:limit]
        more = len(self.places) - len(shown)
        return sep.join(shown) + (f" +{more}" if more else "")


@dataclass(frozen=True)
class Wording:
    label: str
    when: When = When()
    where: Where = Where()
    reference: str = ""
    # The figure that is the news ("52,061 MW", the grid's status), and more in priority
    # order for channels with room.
    value: str = ""
    extras: tuple[str, ...] = ()
    # Sentences for channels that have room for them (a calendar event's description).
    details: tuple[str, ...] = ()
    # Kinds that word their transitions themselves (capmon's own sight) say so here.
    sentences: Mapping[Transition, str] = field(default_factory=dict)

    def headline(self, transition: Transition) -> str:
        """"CAISO EEA 3 issued 9/6 17:17-20:00 PT", "CAISO demand 9/6 updated: 52,061 MW"."""
        if transition in self.sentences:
            return self.sentences[transition]
        if transition == Transition.TEST:
            return TEST_TEXT
        closing = transition in _CLOSING
        if self.when.day is not None:
            text = f"{self.named()} {VERB[transition]}"
        else:
            text = f"{self.label} {VERB[transition]}"
            if self.when.known and not closing:
                text += f" {self.when.short()}"
        return text + (f": {self.value}" if self.value and not closing else "")

    def named(self) -> str:
        """The label with the day that names the condition ("CAISO RA margin 3/17")."""
        return f"{self.label} {self.when.short()}" if self.when.day is not None else self.label


def wording(c: Condition, now: datetime) -> Wording:
    """What `c` says to someone reading it at `now` (which decides whether the year is said)."""
    return _worded(c.attributes, c, now)


def _when(now: datetime, start: datetime | None = None, end: datetime | None = None,
          day: date | None = None) -> When:
    years = {t.astimezone(PACIFIC).year for t in (start, end) if t is not None}
    if day is not None:
        years.add(day.year)
    return When(start, end, day, year=bool(years) and years != {now.astimezone(PACIFIC).year})


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut if cut else text[:limit]


def _mw(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f} MW"


def _regions(regions: tuple[str, ...]) -> Where:
    return Where((_ALL_CAISO,) if CAISO_GRID in regions else regions)


# -- each kind, once -----------------------------------------------------------------------

@singledispatch
def _worded(a: KindAttributes, c: Condition, now: datetime) -> Wording:
    raise NotImplementedError(f"no words for {c.kind} ({type(a).__name__})")


_NOTICE = {Kind.CAISO_FLEX_ALERT: "CAISO Flex Alert", Kind.CAISO_RMO: "CAISO RMO",
           Kind.CAISO_TRANSMISSION_EMERGENCY: "CAISO Transmission Emergency"}


def _notice_label(kind: Kind, a: NoticeAttributes) -> str:
    if kind == Kind.CAISO_EEA:
        level = (a.level or "").upper()
        name = "CAISO EEA Watch" if level == "WATCH" else f"CAISO EEA {level}".rstrip()
        return name + (f" step {a.step}" if a.step else "")
    if kind == Kind.CAISO_LEGACY:
        return f"CAISO {(a.level or 'notice').title()}"
    return _NOTICE[kind]


@_worded.register
def _notice(a: NoticeAttributes, c: Condition, now: datetime) -> Wording:
    # A notice superseded in place (the CAISO producer's contract) names itself: no news.
    replaces = (f"replaces #{a.supersedes[-1]}",) if (
        a.supersedes and a.supersedes[-1] != a.notice_no) else ()
    return Wording(_notice_label(c.kind, a), _when(now, c.window.start, c.window.end),
                   _regions(c.regions), f"#{a.notice_no}" if a.notice_no else "",
                   extras=replaces, details=(a.reason,) if a.reason else ())


@_worded.register
def _status(a: StatusAttributes, c: Condition, now: datetime) -> Wording:
    labels = a.grid_status or ("normal",)
    extras = [f"+{len(labels) - 1} more"] if len(labels) > 1 else []
    if a.current_reserve_mw is not None:
        extras.append(f"reserves {_mw(a.current_reserve_mw)}")
    if a.current_demand_mw is not None:
        extras.append(f"demand {_mw(a.current_demand_mw)}")
    return Wording("CAISO grid status", value=_clip(labels[0], 40), extras=tuple(extras))


@_worded.register
def _demand(a: DemandAttributes, c: Condition, now: datetime) -> Wording:
    extras = []
    if a.day_ahead_peak_mw is not None:
        extras.append(f"DA peak {_mw(a.day_ahead_peak_mw)}")
    if a.todays_peak_mw is not None:
        extras.append(f"peak so far {_mw(a.todays_peak_mw)}")
    return Wording("CAISO demand", _when(now, day=a.operating_day), value=_mw(a.current_mw),
                   extras=tuple(extras))


@_worded.register
def _peak(a: PeakForecastAttributes, c: Condition, now: datetime) -> Wording:
    extras = ([f"HE{a.hour_ending}"] if a.hour_ending else []) + [a.market_run]
    return Wording(f"{a.area} peak forecast", _when(now, day=a.trade_date),
                   value=_mw(a.peak_mw), extras=tuple(extras))


@_worded.register
def _ra(a: RaOutlookAttributes, c: Condition, now: datetime) -> Wording:
    extras = (f"peak {_mw(a.forecast_peak_mw)}",) if a.forecast_peak_mw is not None else ()
    return Wording("CAISO RA margin", _when(now, day=a.operating_day),
                   value=f"min {_mw(a.min_margin_mw)} at {_hm(a.min_margin_interval_end)}",
                   extras=extras)


@_worded.register
def _dr(a: DrEventAttributes, c: Condition, now: datetime) -> Wording:
    # SDP's product is "SDP": "SCE SDP event", not "SCE SDP SDP event".
    product = f" {a.product}" if a.product and a.product != a.program else ""
    when = _when(now, c.window.start, c.window.end)
    if not when.known and a.event_date is not None:
        when = _when(now, day=a.event_date)
    places = a.sublaps or a.locations or a.blocks or c.regions
    estimated = (f"The end time is {a.utility}'s estimate and may move.",) if (
        a.estimated_end) else ()
    return Wording(f"{a.utility} {a.program}{product} event", when, Where(places),
                   f"event {a.event_key}" if a.event_key else "", details=estimated)


@_worded.register
def _health(a: SourceHealthAttributes, c: Condition, now: datetime) -> Wording:
    """capmon's own sight: "capmon cannot see CAISO notices since 9/6 09:47 PT", then "capmon
    sees CAISO notices again (blind 9/6 09:47-10:12 PT)"; a heartbeat names what it sees."""
    name = source_label(a.source)
    when = _when(now, c.window.start, c.window.end)
    since = f" since {when.at(when.start)}" if when.start else ""
    again = f"capmon sees {name} again" + (
        f" (blind {when.short()})" if when.start and when.end else "")
    total = len(a.current) + len(a.not_current)
    watching = f"capmon is watching: {len(a.current)} of {total} sources current" + (
        "; cannot see " + ", ".join(source_label(s) for s in a.not_current)
        if a.not_current else "")
    blind = f"capmon cannot see {name}{since}"
    sentences = {t: blind for t in (Transition.ISSUED, Transition.UPDATED, Transition.STARTED)}
    sentences |= {Transition.REMINDER: f"capmon still cannot see {name}{since}",
                  Transition.ENDED: again, Transition.CANCELLED: again,
                  Transition.HEARTBEAT: watching}
    extras = (_clip(a.last_error, 60),) if c.status.is_open and a.last_error else ()
    return Wording(f"capmon's view of {name}", when, extras=extras, sentences=sentences)


# -- what a stranger may read --------------------------------------------------------------

def public_line(item: NotificationItem, now: datetime) -> str:
    """One item as a stranger may read it: the condition and what happened to it."""
    words = wording(item.condition, now)
    if isinstance(item.facts.get("threshold"), dict):
        # The level crossed is the subscription's; say only that one was.
        cleared = item.transition in _CLOSING
        return f"{words.named()} {'back under a threshold' if cleared else 'crossed a threshold'}"
    return words.headline(item.transition)


def public_summary(n: Notification) -> str:
    """What a notification was about, with nothing of its tenant or subscription."""
    if n.test:
        return TEST_TEXT
    lines = list(dict.fromkeys(public_line(i, n.decided_at) for i in n.items))
    return lines[0] if len(lines) == 1 else f"{len(n.items)} updates: " + "; ".join(lines)
