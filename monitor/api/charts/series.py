"""What each status-page chart plots, shaped from stored conditions (pure functions).

Numbers stay numbers here (MW, aware datetimes); `render` turns them into SVG and words.
Nothing of a tenant reaches these shapes but the levels of their peak-forecast thresholds,
and those only as a band per area, rounded outward, without who set them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from monitor.api.status_view import PEAK_AREAS, RUN_RANK
from monitor.attributes import (
    DemandAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    StatusAttributes,
)
from monitor.clock import PACIFIC
from monitor.events import Condition, Kind, Severity
from monitor.subscriptions import SubscriptionSpec
from monitor.wording import wording

# Tenants' threshold levels are shown as a band whose ends are rounded outward to this step,
# so that no band gives away one tenant's exact level.
BAND_STEP_MW = 1000.0
TIMELINE_BEFORE = timedelta(hours=24)
TIMELINE_AFTER = timedelta(hours=48)
DAYS_AHEAD = 7


def aware(t: datetime) -> datetime:
    # SQLite hands timestamps back naive; the store writes them in UTC.
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The Pacific day's first instant and the next day's (23 or 25 hours apart at DST)."""
    start = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=PACIFIC)


@dataclass(frozen=True)
class Point:
    at: datetime
    mw: float


@dataclass(frozen=True)
class DemandSeries:
    day: date
    start: datetime
    end: datetime
    actual: tuple[Point, ...]
    day_ahead: tuple[Point, ...]
    hour_ahead: tuple[Point, ...]
    forecast_peak_mw: float | None
    forecast_peak_at: datetime | None
    current: Point | None


def demand_series(history: Sequence[Condition], status: Condition | None,
                  today: date) -> DemandSeries:
    """`history`: the revisions of today's `caiso.demand` condition. Each carries the
    interval it was read at, so the day's curves are one point per revision capmon
    recorded; the forecasts beyond the latest interval are not stored, only their peak."""
    by_interval: dict[datetime, tuple[int, DemandAttributes]] = {}
    for c in history:
        a = c.attributes
        if not isinstance(a, DemandAttributes) or a.operating_day != today:
            continue
        if a.interval_end is None:
            continue
        at = aware(a.interval_end)
        held = by_interval.get(at)
        if held is None or c.revision > held[0]:
            by_interval[at] = (c.revision, a)
    rows = sorted((at, a) for at, (_, a) in by_interval.items())

    def curve(field: str) -> tuple[Point, ...]:
        return tuple(Point(at, v) for at, a in rows if (v := getattr(a, field)) is not None)

    actual = curve("current_mw")
    latest = rows[-1][1] if rows else None
    sa = status.attributes if status and isinstance(status.attributes, StatusAttributes) else None
    # The demand panel's forecast peak: Today's Outlook's own, else the day-ahead file's.
    peak_mw, peak_at = (sa.todays_forecast_peak_mw, sa.todays_forecast_peak_at) if sa else (
        None, None)
    if peak_mw is None and latest is not None:
        peak_mw, peak_at = latest.day_ahead_peak_mw, latest.day_ahead_peak_at
    start, end = day_bounds(today)
    return DemandSeries(today, start, end, actual, curve("day_ahead_forecast_mw"),
                        curve("hour_ahead_forecast_mw"), peak_mw,
                        aware(peak_at) if peak_at else None, actual[-1] if actual else None)


@dataclass(frozen=True)
class ThresholdLevel:
    """One level a tenant alerts above on tomorrow's peak forecast; `area` None: any."""

    tenant_id: str
    area: str | None
    mw: float


def threshold_levels(specs: Iterable[tuple[str, SubscriptionSpec]]) -> list[ThresholdLevel]:
    """The `above` levels of the active subscriptions' `caiso.peak_forecast` thresholds that
    apply to tomorrow (`day` tomorrow or unset); `specs` pairs a tenant id with a document."""
    return [ThresholdLevel(tenant, t.area, t.above)
            for tenant, spec in specs if spec.status == "active"
            for t in spec.match.thresholds
            if t.kind == "caiso.peak_forecast" and t.above is not None
            and t.day in (None, "tomorrow")]


@dataclass(frozen=True)
class AreaPeak:
    area: str
    peak_mw: float | None
    hour_ending: int | None
    # Tenants' levels for the area, rounded outward to BAND_STEP_MW; None when none is set.
    band: tuple[float, float] | None
    tenants: int


def band(levels: Sequence[float]) -> tuple[float, float] | None:
    if not levels:
        return None
    low = math.floor(min(levels) / BAND_STEP_MW) * BAND_STEP_MW
    high = math.ceil(max(levels) / BAND_STEP_MW) * BAND_STEP_MW
    return low, max(high, low + BAND_STEP_MW)


def area_peaks(conditions: Sequence[Condition], levels: Sequence[ThresholdLevel],
               tomorrow: date) -> tuple[AreaPeak, ...]:
    best: dict[str, tuple[tuple[int, datetime], PeakForecastAttributes]] = {}
    for c in conditions:
        a = c.attributes
        if c.kind != Kind.CAISO_PEAK_FORECAST or not isinstance(a, PeakForecastAttributes):
            continue
        if a.trade_date != tomorrow:
            continue
        rank = (RUN_RANK.get(a.market_run, 0), aware(c.observed_at))
        if a.area not in best or rank > best[a.area][0]:
            best[a.area] = (rank, a)
    # The peaks table's areas, then any other with a forecast: a threshold's own area is a
    # tenant's words, and never named here.
    areas = [*PEAK_AREAS, *sorted(set(best) - set(PEAK_AREAS))]
    out = []
    for area in areas:
        mine = [lv for lv in levels if lv.area in (None, area)]
        chosen = best[area][1] if area in best else None
        out.append(AreaPeak(area, chosen.peak_mw if chosen else None,
                            chosen.hour_ending if chosen else None,
                            band([lv.mw for lv in mine]), len({lv.tenant_id for lv in mine})))
    return tuple(out)


@dataclass(frozen=True)
class MarginDay:
    day: date
    margin_mw: float
    at: datetime

    @property
    def shortfall(self) -> bool:
        return self.margin_mw < 0


def margin_days(conditions: Sequence[Condition], today: date) -> tuple[MarginDay, ...]:
    """The latest outlook's lowest margin for each of the seven days from today."""
    latest: dict[date, tuple[datetime, RaOutlookAttributes]] = {}
    for c in conditions:
        a = c.attributes
        if c.kind != Kind.CAISO_RA_OUTLOOK or not isinstance(a, RaOutlookAttributes):
            continue
        if not today <= a.operating_day < today + timedelta(days=DAYS_AHEAD):
            continue
        seen = aware(c.observed_at)
        if a.operating_day not in latest or seen > latest[a.operating_day][0]:
            latest[a.operating_day] = (seen, a)
    return tuple(MarginDay(day, a.min_margin_mw, aware(a.min_margin_interval_end))
                 for day, (_, a) in sorted(latest.items()))


@dataclass(frozen=True)
class Bar:
    label: str
    severity: Severity
    status: str
    start: datetime | None  # None: not known
    end: datetime | None  # None: end TBD


@dataclass(frozen=True)
class Timeline:
    start: datetime
    now: datetime
    end: datetime
    bars: tuple[Bar, ...]


def timeline(open_conditions: Sequence[Condition], now: datetime) -> Timeline:
    """Active and scheduled notices and DR events whose window meets the last 24 hours or
    the next 48, earliest first."""
    now = aware(now)
    start, end = now - TIMELINE_BEFORE, now + TIMELINE_AFTER
    bars = []
    for c in open_conditions:
        if c.kind in (Kind.SOURCE_HEALTH, Kind.CAISO_STATUS, Kind.CAISO_DEMAND,
                      Kind.CAISO_PEAK_FORECAST, Kind.CAISO_RA_OUTLOOK):
            continue
        s = aware(c.window.start) if c.window.start else None
        e = aware(c.window.end) if c.window.end else None
        if (e is not None and e < start) or (s is not None and s > end):
            continue
        bars.append(Bar(wording(c, now).label, c.severity, c.status.value, s, e))
    bars.sort(key=lambda b: (b.start or start, -b.severity.rank, b.label))
    return Timeline(start, now, end, tuple(bars))
