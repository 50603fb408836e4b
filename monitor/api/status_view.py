"""What the status page shows, computed from stored conditions and the ledger (pure functions).

`build_view` takes what the store returned and the runtime's "now" and returns plain, already
formatted values, so the template only lays them out. A missing value is spelled "unknown" or
"no data" here, never left for the template to render as normal. Whether a panel is current
has one meaning, the one `/readyz` and the API use: none of the sources it is read from has an
open `source.health` condition (monitor.source_health). A panel whose source capmon cannot
see says its contents are unknown, never "no events".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from monitor.attributes import (
    DemandAttributes,
    KindAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    StatusAttributes,
)
from monitor.clock import PACIFIC
from monitor.events import Condition, Kind, Severity
from monitor.ledger import LedgerEntry
from monitor.source_health import MAILBOX, Blind, not_current, source_label
from monitor.wording import long_day, pacific, public_summary, wording

A = TypeVar("A", bound=KindAttributes)
UNKNOWN = "unknown"
NO_DATA = "no data"

NOTICE_KINDS = (Kind.CAISO_EEA, Kind.CAISO_RMO, Kind.CAISO_FLEX_ALERT,
                Kind.CAISO_TRANSMISSION_EMERGENCY, Kind.CAISO_LEGACY)
PEAK_AREAS = ("CA ISO-TAC", "SCE-TAC")
# The sources each panel is read from.
PANEL_SOURCES: dict[str, tuple[str, ...]] = {
    "grid": ("caiso-stats",), "demand": ("caiso-demand", "caiso-stats"),
    "peaks": ("caiso-oasis",), "notices": (MAILBOX, "caiso-flex"), "dr": ("sce-dr",),
    "ra": ("caiso-ra-outlook",),
}
# Below this minimum margin a day is labelled "tight" (a display hint, not an alert threshold:
# thresholds belong to subscriptions).
TIGHT_MARGIN_MW = 2000.0
# A newer market run of the same trade date replaces an older one.
RUN_RANK = {"DAM": 4, "2DA": 3, "7DA": 2, "STATS": 1, "RTM": 0}


def fmt_time(t: datetime | None, *, with_day: bool = True) -> str:
    if t is None:
        return UNKNOWN
    if t.tzinfo is None:  # SQLite hands timestamps back naive; the store writes them in UTC
        t = t.replace(tzinfo=UTC)
    return pacific(t, with_day=with_day)


def fmt_mw(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.0f} MW"


@dataclass(frozen=True)
class Freshness:
    as_of: str
    # Why what the panel shows may be out of date, or "" while its sources are current.
    unknown: str = ""


def freshness(observed: datetime | None) -> Freshness:
    return Freshness(NO_DATA if observed is None else fmt_time(observed))


def blind_sentence(blind: Sequence[Blind]) -> str:
    """"capmon cannot see SCE DR events since Tue Sep 6 2022, 09:47 PDT (cannot resolve
    www.sce.com)", for each source in `blind`; "" when there is none."""
    return "; ".join(f"capmon cannot see {b.label} since {fmt_time(b.since)} ({b.why})"
                     for b in blind)


@dataclass(frozen=True)
class BlindRow:
    label: str
    source: str
    since: str
    why: str
    last_good: str


@dataclass(frozen=True)
class SourceRow:
    label: str
    source: str
    state: str  # "current", "cannot see"
    detail: str


@dataclass(frozen=True)
class GridStatus:
    labels: str
    reserve: str
    required_reserve: str
    reserve_state: str  # "above requirement", "BELOW requirement", "unknown"
    fresh: Freshness


@dataclass(frozen=True)
class Demand:
    current: str
    forecast_peak: str
    percent_of_peak: str
    peak_so_far: str
    fresh: Freshness


@dataclass(frozen=True)
class PeakRow:
    area: str
    day: str
    peak: str
    at: str
    vintage: str


@dataclass(frozen=True)
class MarginRow:
    day: str
    margin: str
    at: str
    label: str  # "shortfall", "tight", "lowest", "" (always text, never colour alone)


@dataclass(frozen=True)
class EventRow:
    severity: str
    name: str
    status: str
    window: str
    regions: str
    reference: str


@dataclass(frozen=True)
class NotificationRow:
    at: str
    severity: str
    channel: str
    state: str
    summary: str


@dataclass(frozen=True)
class StatusView:
    now: str
    headline: str
    headline_severity: str
    grid: GridStatus
    demand: Demand
    peaks: tuple[PeakRow, ...]
    peaks_unknown: str
    margins: tuple[MarginRow, ...]
    margin_fresh: Freshness
    notices: tuple[EventRow, ...]
    notices_unknown: str
    notices_note: str
    dr_events: tuple[EventRow, ...]
    dr_unknown: str
    blind: tuple[BlindRow, ...]
    blind_summary: str
    sources: tuple[SourceRow, ...]
    notifications: tuple[NotificationRow, ...]
    delivery_counts: tuple[tuple[str, int], ...]
    delivery_health: str
    refresh_seconds: int = 60


def _figures(c: Condition | None, model: type[A]) -> A | None:
    """The figures a panel reads from `c`, if it is of the kind whose attributes are `model`."""
    return c.attributes if c is not None and isinstance(c.attributes, model) else None


def _latest(conditions: Sequence[Condition], kind: Kind) -> Condition | None:
    of_kind = [c for c in conditions if c.kind == kind]
    return max(of_kind, key=lambda c: c.observed_at, default=None)


def grid_status(status: Condition | None, now: datetime) -> GridStatus:
    a = _figures(status, StatusAttributes)
    if status is None or a is None:
        return GridStatus(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, freshness(None))
    state = UNKNOWN
    if a.current_reserve_mw is not None and a.required_reserve_mw is not None:
        state = ("above requirement" if a.current_reserve_mw >= a.required_reserve_mw
                 else "BELOW requirement")
    labels = ", ".join(a.grid_status) if a.grid_status else UNKNOWN
    return GridStatus(labels, fmt_mw(a.current_reserve_mw), fmt_mw(a.required_reserve_mw), state,
                      freshness(a.as_of or status.observed_at))


def demand(status: Condition | None, demand_c: Condition | None, now: datetime) -> Demand:
    sa, da = _figures(status, StatusAttributes), _figures(demand_c, DemandAttributes)
    # Prefer the 5-minute demand.csv interval; fall back on stats.txt for each value.
    current = da.current_mw if da and da.current_mw is not None else (
        sa.current_demand_mw if sa else None)
    forecast = sa.todays_forecast_peak_mw if sa else None
    if forecast is None and da is not None:
        forecast = da.day_ahead_peak_mw
    peak, peak_at = (da.todays_peak_mw, da.todays_peak_at) if da else (None, None)
    if peak is None and sa is not None:
        peak, peak_at = sa.todays_peak_mw, sa.todays_peak_at
    percent = (f"{100 * current / forecast:.0f}% of forecast peak"
               if current is not None and forecast else UNKNOWN)
    peak_text = (UNKNOWN if peak is None
                 else f"{fmt_mw(peak)} at {fmt_time(peak_at, with_day=False)}")
    observed = [c.observed_at for c in (status, demand_c) if c is not None]
    return Demand(fmt_mw(current), fmt_mw(forecast), percent, peak_text,
                  freshness(max(observed, default=None)))


def tomorrow_peaks(conditions: Sequence[Condition], status: Condition | None,
                   today: date) -> tuple[PeakRow, ...]:
    tomorrow = today + timedelta(days=1)
    best: dict[str, tuple[PeakForecastAttributes, Condition]] = {}
    for c in conditions:
        a = _figures(c, PeakForecastAttributes)
        if a is None or a.trade_date != tomorrow or a.area not in PEAK_AREAS:
            continue
        held = best.get(a.area)
        rank = (RUN_RANK.get(a.market_run, 0), c.observed_at)
        if held is None or rank > (RUN_RANK.get(held[0].market_run, 0), held[1].observed_at):
            best[a.area] = (a, c)
    day = long_day(tomorrow)
    outlook = _figures(status, StatusAttributes)
    rows = []
    for area in PEAK_AREAS:
        if area in best:
            a, c = best[area]
            vintage = a.market_run + (f", made {fmt_time(a.vintage)}" if a.vintage else "")
            at = f"hour ending {a.hour_ending}" if a.hour_ending else fmt_time(a.peak_at)
            rows.append(PeakRow(area, day, fmt_mw(a.peak_mw), at, vintage))
        elif area == "CA ISO-TAC" and outlook and outlook.tomorrows_forecast_peak_mw:
            rows.append(PeakRow(area, day, fmt_mw(outlook.tomorrows_forecast_peak_mw), UNKNOWN,
                                "Today's Outlook"))
        else:
            rows.append(PeakRow(area, day, NO_DATA, UNKNOWN, UNKNOWN))
    return tuple(rows)


def ra_margins(conditions: Sequence[Condition], today: date,
               now: datetime) -> tuple[tuple[MarginRow, ...], Freshness]:
    latest: dict[date, tuple[RaOutlookAttributes, Condition]] = {}
    for c in conditions:
        a = _figures(c, RaOutlookAttributes)
        if a is None or not today <= a.operating_day < today + timedelta(days=7):
            continue
        held = latest.get(a.operating_day)
        if held is None or c.observed_at > held[1].observed_at:
            latest[a.operating_day] = (a, c)
    if not latest:
        return (), freshness(None)
    lowest = min(a.min_margin_mw for a, _ in latest.values())
    rows = []
    for day in sorted(latest):
        a, _ = latest[day]
        label = ("shortfall" if a.min_margin_mw < 0 else
                 "tight" if a.min_margin_mw < TIGHT_MARGIN_MW else "")
        if a.min_margin_mw == lowest:
            label = f"{label}, lowest of the week" if label else "lowest of the week"
        rows.append(MarginRow(long_day(day), fmt_mw(a.min_margin_mw),
                              fmt_time(a.min_margin_interval_end, with_day=False), label))
    newest = max(c.observed_at for _, c in latest.values())
    return tuple(rows), freshness(newest)


def event_row(c: Condition, now: datetime) -> EventRow:
    """A notice or a DR event as the tables list it, in the words of every other channel."""
    words = wording(c, now)
    return EventRow(c.severity.value.upper(), words.label, c.status.value,
                    words.when.long() or UNKNOWN, words.where.text() or UNKNOWN, words.reference)


def blind_row(b: Blind) -> BlindRow:
    return BlindRow(b.label, b.source, fmt_time(b.since), b.why,
                    fmt_time(b.last_success_at) if b.last_success_at else "not since start")


def source_rows(sources: Sequence[str], blind: Sequence[Blind]) -> tuple[SourceRow, ...]:
    """Every source capmon watches, and any it does not watch but has reported."""
    by_source = {b.source: b for b in blind}
    names = list(sources) + [b.source for b in blind if b.source not in sources]
    rows = []
    for name in names:
        b = by_source.get(name)
        if b is None:
            rows.append(SourceRow(source_label(name), name, "current", ""))
        else:
            rows.append(SourceRow(b.label, name, "cannot see",
                                  f"since {fmt_time(b.since)}: {b.why}"))
    return tuple(rows)


def panel_unknown(panel: str, blind: Sequence[Blind]) -> str:
    return blind_sentence([b for b in blind if b.source in PANEL_SOURCES[panel]])


def _by_severity(rows: Sequence[Condition]) -> list[Condition]:
    return sorted(rows, key=lambda c: (-c.severity.rank, c.window.start or c.observed_at))


def notification_row(e: LedgerEntry) -> NotificationRow:
    severity, summary = UNKNOWN, ""
    try:
        n = e.notification()
        severity, summary = n.severity.value.upper(), public_summary(n)
    except ValueError:  # a payload that no longer validates is still listed, not hidden
        summary = "(unreadable payload)"
    return NotificationRow(fmt_time(e.created_at), severity, e.channel, e.state, summary)


def delivery_health(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no notifications yet"
    dead, failed = counts.get("dead", 0), counts.get("failed", 0)
    if dead:
        return f"ATTENTION: {dead} dead-lettered"
    if failed:
        return f"degraded: {failed} waiting for retry"
    return "healthy: no failed or dead deliveries"


def build_view(open_conditions: Sequence[Condition], recent: Sequence[Condition],
               entries: Sequence[LedgerEntry], counts: Mapping[str, int],
               now: datetime, refresh_seconds: int = 60,
               sources: Sequence[str] = ()) -> StatusView:
    """`open_conditions`: scheduled/active ones (with the `source.health` conditions as
    /readyz sees them); `recent`: the latest of the numeric kinds; `sources`: the sources
    capmon is configured to watch."""
    today = now.astimezone(PACIFIC).date()
    status = _latest(recent, Kind.CAISO_STATUS)
    notices = _by_severity([c for c in open_conditions if c.kind in NOTICE_KINDS])
    dr = _by_severity([c for c in open_conditions if c.kind == Kind.SCE_DR_EVENT])
    blind = not_current(open_conditions)
    margins, margin_fresh = ra_margins(recent, today, now)
    grid = grid_status(status, now)
    demand_view = demand(status, _latest(recent, Kind.CAISO_DEMAND), now)
    alerting = notices + dr
    if alerting:
        top = alerting[0]
        headline_severity = top.severity.value.upper()
        headline = f"{len(alerting)} active or scheduled: highest {wording(top, now).label}"
    elif blind:
        headline_severity = UNKNOWN.upper()
        headline = (f"capmon cannot see {len(blind)} of its sources: the grid's state is "
                    "not known")
    elif status is None:
        headline_severity, headline = UNKNOWN.upper(), "Grid status unknown: no data yet"
    else:
        headline_severity = Severity.INFO.value.upper()
        headline = "No active or scheduled notices or DR events"
    watched = len(set(sources) | {b.source for b in blind})
    notes = "" if not sources or MAILBOX in sources else (
        "CAISO sends its EEA, RMO and Transmission Emergency notices only by email, and no "
        "mailbox is configured (imap.host): only Flex Alerts are seen here.")
    return StatusView(
        now=fmt_time(now), headline=headline, headline_severity=headline_severity,
        grid=dataclasses.replace(grid, fresh=dataclasses.replace(
            grid.fresh, unknown=panel_unknown("grid", blind))),
        demand=dataclasses.replace(demand_view, fresh=dataclasses.replace(
            demand_view.fresh, unknown=panel_unknown("demand", blind))),
        peaks=tomorrow_peaks(recent, status, today), peaks_unknown=panel_unknown("peaks", blind),
        margins=margins,
        margin_fresh=dataclasses.replace(margin_fresh, unknown=panel_unknown("ra", blind)),
        notices=tuple(event_row(c, now) for c in notices),
        notices_unknown=panel_unknown("notices", blind), notices_note=notes,
        dr_events=tuple(event_row(c, now) for c in dr), dr_unknown=panel_unknown("dr", blind),
        blind=tuple(blind_row(b) for b in blind),
        blind_summary=(f"capmon cannot see {len(blind)} of {watched} sources" if blind
                       else ""),
        sources=source_rows(sources, blind),
        notifications=tuple(notification_row(e) for e in entries),
        delivery_counts=tuple(sorted(counts.items())), delivery_health=delivery_health(counts),
        refresh_seconds=refresh_seconds,
    )
