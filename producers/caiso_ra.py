"""Today's Outlook `rtm_forecast_7day.csv` -> one `caiso.ra_outlook` per operating day.

`Time` (`MM/DD/YYYY HH:MM`, Pacific) is the interval END (confirmed: hourly values change at
`HH:05`), so the `00:00` row closes the previous day and the file's trailing midnight row is the
last interval of its last day. Per interval:

    margin = Resource adequacy capacity forecast - Day-ahead demand forecast
             - Reserve requirement forecast

and per operating day the minimum margin, the interval where it falls, and the day's forecast
peak (max day-ahead demand forecast). Days the file covers only in part (the one-row overlap at
its start) are left out rather than reported with a wrong minimum. Condition id:
`caiso.ra-margin:<date>`.

A cut file is a ParseError (reason `truncated`), never fewer or shorter days: every published
file runs from the opening midnight through the midnight that closes the eighth day after it
and ends with a line break, so anything short of `DAYS` consecutive whole days, a last row
that is not that closing midnight, or a last line without a line break is a cut.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from monitor.attributes import RaOutlookAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from producers.caiso_common import (
    FIVE_MINUTES,
    csv_table,
    cut_mid_line,
    day_bounds,
    decode_text,
    interval_day,
    is_ambiguous,
    number,
    outlook_file,
    pacific,
    pacific_day,
)
from producers.single_url import SingleUrlSource
from producers.source import Schedule

_TIME = "Time"
_RA = "Resource adequacy capacity forecast"
_DA = "Day-ahead demand forecast"
_RR = "Reserve requirement forecast"
_WHAT = "rtm_forecast_7day.csv"
_DAY_FORM = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")
_CLOCK_FORM = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
# A day counts when at least this share of its 5-minute intervals has every forecast column.
_MIN_COVERAGE = 0.9
# The operating days of every published file: the publish day and the seven after it.
DAYS = 8


class Interval(NamedTuple):
    end: datetime
    ra: float
    demand: float
    reserve: float
    margin: float  # ra - demand - reserve


class _Day(NamedTuple):
    day: date
    midnight: datetime  # UTC
    regular: bool  # 24 hours: the wall clock is midnight plus elapsed time


class _Ends:
    """Interval ends (UTC) of `MM/DD/YYYY HH:MM` labels, the one form this file uses. A file
    repeats 9 dates and 288 times of day over its 2,305 rows, so each is read and checked once;
    only DST days go through the zone's rules (a skipped time moves forward, a repeated
    fall-back time is the second occurrence the second time)."""

    def __init__(self) -> None:
        self._days: dict[str, _Day] = {}
        self._clocks: dict[str, tuple[time, timedelta]] = {}
        self._seen: set[datetime] = set()

    def __call__(self, label: str) -> datetime:
        day_text, _, clock_text = label.partition(" ")
        day = self._days.get(day_text) or self._days.setdefault(
            day_text, self._read_day(day_text, label))
        clock, elapsed = self._clocks.get(clock_text) or self._clocks.setdefault(
            clock_text, self._read_clock(clock_text, label))
        if day.regular:
            return day.midnight + elapsed
        naive = datetime.combine(day.day, clock)
        fold = 1 if naive in self._seen and is_ambiguous(naive) else 0
        self._seen.add(naive)
        return pacific(naive, fold=fold)

    @staticmethod
    def _read_day(text: str, label: str) -> _Day:
        m = _DAY_FORM.match(text)
        if m is None:
            raise ParseError(f"{_WHAT}: Time is not MM/DD/YYYY HH:MM: {label[:30]!r}")
        month, day, year = map(int, m.groups())
        try:
            d = date(year, month, day)
        except ValueError:
            raise ParseError(f"{_WHAT}: impossible time {label[:30]!r}") from None
        start, end = day_bounds(d)
        return _Day(d, start, end - start == timedelta(days=1))

    @staticmethod
    def _read_clock(text: str, label: str) -> tuple[time, timedelta]:
        m = _CLOCK_FORM.match(text)
        if m is None:
            raise ParseError(f"{_WHAT}: Time is not MM/DD/YYYY HH:MM: {label[:30]!r}")
        hour, minute = map(int, m.groups())
        if hour > 23 or minute > 59:
            raise ParseError(f"{_WHAT}: impossible time {label[:30]!r}")
        return time(hour, minute), timedelta(hours=hour, minutes=minute)


def intervals(raw: bytes) -> list[Interval]:
    text = decode_text(raw, _WHAT)
    cut_mid_line(text, _WHAT)
    columns, rows = csv_table(text, _WHAT, (_TIME, _RA, _DA, _RR))
    at_time, at_ra, at_da, at_rr = (columns[c] for c in (_TIME, _RA, _DA, _RR))
    end_of = _Ends()
    out: list[Interval] = []
    for row in rows:
        end = end_of(row[at_time].strip())
        ra, demand, reserve = number(row[at_ra], _RA), number(row[at_da], _DA), number(
            row[at_rr], _RR)
        if ra is None or demand is None or reserve is None:
            continue
        out.append(Interval(end, ra, demand, reserve, ra - demand - reserve))
    if not out:
        raise ParseError(f"{_WHAT}: no interval with all forecast columns")
    return out


def parse(raw: bytes, fetched_at: datetime, source_url: str | None = None) -> list[Condition]:
    by_day: dict[date, dict[datetime, Interval]] = defaultdict(dict)
    for iv in intervals(raw):
        by_day[interval_day(iv.end)][iv.end] = iv
    complete = {}
    for day, ivs in sorted(by_day.items()):
        start, end = day_bounds(day)
        if len(ivs) >= (end - start) / FIVE_MINUTES * _MIN_COVERAGE:
            complete[day] = ivs
    if not complete:
        raise ParseError("rtm_forecast_7day.csv: no complete operating day")
    published, last = min(complete), max(complete)
    if len(complete) != DAYS or (last - published).days != DAYS - 1:
        raise ParseError(f"{_WHAT}: cut: {len(complete)} whole days ({published.isoformat()} .. "
                         f"{last.isoformat()}), not {DAYS} in a row", reason="truncated")
    closing = max(by_day[last])
    if closing != day_bounds(last)[1]:
        raise ParseError(f"{_WHAT}: cut: the last day {last.isoformat()} stops at "
                         f"{closing.isoformat()}, before its closing midnight",
                         reason="truncated")
    today = pacific_day(fetched_at)
    out: list[Condition] = []
    for day, ivs in complete.items():
        start, end = day_bounds(day)
        lowest = min(ivs.values(), key=lambda iv: (iv.margin, iv.end))
        peak = max(ivs.values(), key=lambda iv: (iv.demand, -iv.end.timestamp()))
        out.append(Condition(
            id=f"caiso.ra-margin:{day.isoformat()}", kind=Kind.CAISO_RA_OUTLOOK,
            severity=Severity.INFO, status=Status.ENDED if day < today else Status.ACTIVE,
            window=Window(start=start, end=end), regions=("CAISO Grid",),
            attributes=RaOutlookAttributes(
                operating_day=day, min_margin_mw=lowest.margin,
                min_margin_interval_end=lowest.end, ra_capacity_mw=lowest.ra,
                demand_forecast_mw=lowest.demand, reserve_requirement_mw=lowest.reserve,
                forecast_peak_mw=peak.demand, forecast_peak_at=peak.end, published=published),
            revision=0, observed_at=fetched_at, source_url=source_url))
    return out


class RaOutlookSource(SingleUrlSource):
    """`current/rtm_forecast_7day.csv`; the forecast columns move a few times a day, so every
    15 minutes is plenty (the actuals columns, which change every 5 minutes, are not used)."""

    name = "caiso-ra-outlook"

    def __init__(self, outlook_url: str) -> None:
        super().__init__(outlook_file(outlook_url, "rtm_forecast_7day.csv"),
                         Schedule(interval_s=900, offset_s=90, jitter_s=30), parse)
