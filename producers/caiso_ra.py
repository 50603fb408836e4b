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
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from monitor.attributes import RaOutlookAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.topics import CAISO
from producers.caiso_common import (
    FIVE_MINUTES,
    csv_rows,
    day_bounds,
    decode_text,
    interval_day,
    is_ambiguous,
    number,
    pacific,
    pacific_day,
)
from producers.source import Fetcher, PollResult, Schedule

_TIME = "Time"
_RA = "Resource adequacy capacity forecast"
_DA = "Day-ahead demand forecast"
_RR = "Reserve requirement forecast"
_TIME_FORM = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}) ([0-9]{1,2}):([0-9]{2})$")
# A day counts when at least this share of its 5-minute intervals has every forecast column.
_MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class Interval:
    end: datetime
    ra: float
    demand: float
    reserve: float

    @property
    def margin(self) -> float:
        return self.ra - self.demand - self.reserve


def _wall_time(value: str) -> datetime:
    """`MM/DD/YYYY HH:MM` (the one form this file uses) without strptime's per-call cost."""
    m = _TIME_FORM.match(value)
    if m is None:
        raise ParseError(f"rtm_forecast_7day.csv: Time is not MM/DD/YYYY HH:MM: {value[:30]!r}")
    month, day, year, hour, minute = map(int, m.groups())
    try:
        return datetime(year, month, day, hour, minute)  # noqa: DTZ001 - Pacific wall clock
    except ValueError:
        raise ParseError(f"rtm_forecast_7day.csv: impossible time {value[:30]!r}") from None


def intervals(raw: bytes) -> list[Interval]:
    text = decode_text(raw, "rtm_forecast_7day.csv")
    out: list[Interval] = []
    seen: set[datetime] = set()
    for row in csv_rows(text, "rtm_forecast_7day.csv", (_TIME, _RA, _DA, _RR)):
        naive = _wall_time(row[_TIME])
        fold = 1 if naive in seen and is_ambiguous(naive) else 0
        seen.add(naive)
        ra, demand, reserve = (number(row[c], c) for c in (_RA, _DA, _RR))
        if ra is None or demand is None or reserve is None:
            continue
        out.append(Interval(pacific(naive, fold=fold), ra, demand, reserve))
    if not out:
        raise ParseError("rtm_forecast_7day.csv: no interval with all forecast columns")
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
    published = min(complete)
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


class RaOutlookSource:
    """`current/rtm_forecast_7day.csv`; the forecast columns move a few times a day, so every
    15 minutes is plenty (the actuals columns, which change every 5 minutes, are not used)."""

    name = "caiso-ra-outlook"
    topic = CAISO

    def __init__(self, outlook_url: str) -> None:
        self.url = f"{outlook_url.rstrip('/')}/current/rtm_forecast_7day.csv"
        self.schedule = Schedule(interval_s=900, offset_s=90, jitter_s=30)

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        resp = await fetch.get(self.url, cache_bust=True)
        return PollResult(conditions=tuple(parse(resp.body, resp.fetched_at or now,
                                                 source_url=self.url)))

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return last

