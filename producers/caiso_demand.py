"""Today's Outlook `demand.csv` -> one `caiso.demand` condition per operating day.

Rules (docs/sources-caiso.md, `demand.csv` and the one interval rule):
- columns by header name (both header variants; extra, missing or reordered columns);
- one rule for every Today's Outlook file: a `Time` label is the END of its 5-minute interval
  (day-ahead values change at HH:05), and an interval belongs to the day it starts in
  (`caiso_common.interval_day`). So of the 289 rows `00:00, 00:05 ... 23:55, 00:00` the first
  `00:00` closes the previous day and is dropped, and the last one closes this day and is
  kept, as the instant of the next midnight; rows with an empty `Time` are dropped;
- blank `Current demand` means "not yet known", never zero;
- spring forward: `02:00 ... 02:55` exist with blank values and are dropped; fall back: the one
  published `01:xx` hour is the first occurrence (PDT); a repeated time keeps the first row;
- no date inside: the operating day is the Pacific date of the fetch, except just after midnight
  when `current/` still serves yesterday's file (its last reading is later than "now");
- the instant is kept as `interval_end` and the raw label as `interval_label`.

Completeness and freshness (a cut or stale file is a ParseError, never a reading):
- the file lists every label of its day, forecasts included, so it must run to the closing
  `00:00` and end with a line break (reason `truncated`);
- the last row is where a cut lands: a value of it below half the row before's (a number that
  lost digits, a zero), or a missing day-ahead forecast the row before has, is `truncated`;
- `current/`'s latest reading (the day's start while it has none) older than `STALE_AFTER`
  at the fetch is `stale`: the file stopped moving, and its reading is not current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from monitor.attributes import DemandAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from producers.caiso_common import (
    STALE_AFTER,
    csv_rows,
    cut_mid_line,
    day_bounds,
    decode_text,
    exists_in_pacific,
    interval_day,
    number,
    outlook_file,
    pacific,
    pacific_day,
)
from producers.single_url import SingleUrlSource
from producers.source import Schedule

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$", re.ASCII)
_CURRENT = "Current demand"
_DA = "Day ahead forecast"
_HA = "Hour ahead forecast"
_DAY_END = 24 * 60  # minutes: the label of the interval that ends at the next midnight
# A file whose last reading is this far past "now" is yesterday's (clock skew allowance).
_ROLLOVER_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Row:
    label: str
    minute: int  # of the label after the day's first midnight; 1440 = the closing 00:00
    current: float | None
    day_ahead: float | None
    hour_ahead: float | None


@dataclass(frozen=True)
class Reading:
    label: str
    at: datetime  # the end of the interval
    current: float | None
    day_ahead: float | None
    hour_ahead: float | None


def _label_minute(label: str, first: bool) -> int:
    m = _HHMM.match(label)
    if m is None:
        raise ParseError(f"demand.csv: Time is not HH:MM: {label[:20]!r}")
    hh, mm = int(m.group(1)), int(m.group(2))
    if hh > 24 or mm > 59 or (hh == 24 and mm):
        raise ParseError(f"demand.csv: Time out of range: {label!r}")
    minute = hh * 60 + mm
    # Midnight opens the file (the previous day's last interval) or closes it (this day's).
    return _DAY_END if minute in (0, _DAY_END) and not first else minute


def read_rows(raw: bytes) -> list[Row]:
    """The labelled rows in file order, each time once (the first row wins)."""
    text = decode_text(raw, "demand.csv")
    cut_mid_line(text, "demand.csv")
    rows: list[Row] = []
    seen: set[int] = set()
    for cells in csv_rows(text, "demand.csv", ("Time",)):
        label = cells.get("Time", "")
        if not label:
            continue
        minute = _label_minute(label, first=not seen)
        if minute in seen:
            continue  # a repeated label (collapsed fall-back hour published twice)
        seen.add(minute)
        rows.append(Row(label, minute, number(cells.get(_CURRENT), _CURRENT),
                        number(cells.get(_DA), _DA), number(cells.get(_HA), _HA)))
    if not rows:
        raise ParseError("demand.csv: no data rows")
    if not any(c in text.split("\n", 1)[0] for c in (_CURRENT, _DA, _HA)):
        raise ParseError("demand.csv: no demand or forecast column")
    if rows[-1].minute != _DAY_END:
        raise ParseError(f"demand.csv: cut short: the rows stop at {rows[-1].label}, before the "
                         "closing 00:00", reason="truncated")
    if len(rows) > 1:
        _check_last(rows[-2], rows[-1])
    return rows


def _check_last(before: Row, last: Row) -> None:
    for name, was, now in ((_CURRENT, before.current, last.current),
                           (_DA, before.day_ahead, last.day_ahead),
                           (_HA, before.hour_ahead, last.hour_ahead)):
        if was is not None and now is not None and now < was / 2:
            raise ParseError(f"demand.csv: last row {last.label}: {name} {now:g} MW after "
                             f"{was:g} MW: cut", reason="truncated")
    if before.day_ahead is not None and last.day_ahead is None:
        raise ParseError(f"demand.csv: last row {last.label}: no {_DA}: cut",
                         reason="truncated")


def _instant(day: date, minute: int) -> tuple[datetime, bool]:
    """The label's instant on `day` (UTC), and whether that wall-clock time exists."""
    if minute == _DAY_END:
        return day_bounds(day)[1], True
    naive = datetime(day.year, day.month, day.day, minute // 60, minute % 60)  # noqa: DTZ001
    return pacific(naive), exists_in_pacific(naive)


def readings(rows: list[Row], day: date) -> list[Reading]:
    """The rows whose interval falls in `day`, with their instants."""
    out = []
    for r in rows:
        at, exists = _instant(day, r.minute)
        if interval_day(at) != day:
            continue  # the opening 00:00 closes the previous day
        if not exists and r.current is None and r.day_ahead is None and r.hour_ahead is None:
            continue  # spring-forward placeholder rows
        out.append(Reading(r.label, at, r.current, r.day_ahead, r.hour_ahead))
    return out


def operating_day(rows: list[Row], fetched_at: datetime) -> date:
    """Today in Pacific, or yesterday when the file's last reading is later than now."""
    today = pacific_day(fetched_at)
    known = [r.minute for r in rows if r.current is not None]
    if known and _instant(today, max(known))[0] > fetched_at + _ROLLOVER_SLACK:
        return today - timedelta(days=1)
    return today


def parse(raw: bytes, fetched_at: datetime, day: date | None = None,
          source_url: str | None = None) -> list[Condition]:
    """`day` is the operating day for `history/YYYYMMDD/` files; None means `current/`."""
    rows = read_rows(raw)
    current = day is None
    if day is None:
        day = operating_day(rows, fetched_at)
    in_day = readings(rows, day)
    known = [r for r in in_day if r.current is not None]
    latest = known[-1] if known else None
    start, end = day_bounds(day)
    if current and fetched_at - (latest.at if latest else start) > STALE_AFTER:
        since = latest.label if latest else "the day's start"
        raise ParseError(f"demand.csv: stale: no reading since {since} ({day.isoformat()}) at "
                         f"the fetch {fetched_at.isoformat()}", reason="stale")
    peak = max(known, key=lambda r: r.current or 0.0) if known else None
    forecast = [r for r in in_day if r.day_ahead is not None]
    da_peak = max(forecast, key=lambda r: r.day_ahead or 0.0) if forecast else None
    attributes = DemandAttributes(
        operating_day=day,
        interval_end=latest.at if latest else None,
        current_mw=latest.current if latest else None,
        day_ahead_forecast_mw=latest.day_ahead if latest else None,
        hour_ahead_forecast_mw=latest.hour_ahead if latest else None,
        todays_peak_mw=peak.current if peak else None,
        todays_peak_at=peak.at if peak else None,
        day_ahead_peak_mw=da_peak.day_ahead if da_peak else None,
        day_ahead_peak_at=da_peak.at if da_peak else None,
        interval_label=latest.label if latest else None,
    )
    status = Status.ACTIVE if fetched_at < end else Status.ENDED
    return [Condition(
        id=f"caiso.demand:{day.isoformat()}", kind=Kind.CAISO_DEMAND, severity=Severity.INFO,
        status=status, window=Window(start=start, end=end), regions=("CAISO Grid",),
        attributes=attributes, revision=0, observed_at=fetched_at, source_url=source_url)]


class DemandSource(SingleUrlSource):
    """`current/demand.csv`, 60-90 s after each 5-minute mark."""

    name = "caiso-demand"

    def __init__(self, outlook_url: str) -> None:
        super().__init__(outlook_file(outlook_url, "demand.csv"),
                         Schedule(interval_s=300, offset_s=60, jitter_s=30), parse)
