"""Today's Outlook `demand.csv` -> one `caiso.demand` condition per operating day.

Rules (sources-caiso.md section 1):
- columns by header name (both header variants; extra, missing or reordered columns);
- 288 rows `00:00 ... 23:55` plus a trailing `00:00` of the next day, which is dropped, as are
  rows with an empty `Time`;
- blank `Current demand` means "not yet known", never zero;
- spring forward: `02:00 ... 02:55` exist with blank values and are dropped; fall back: the one
  published `01:xx` hour is the first occurrence (PDT);
- no date inside: the operating day is the Pacific date of the fetch, except just after midnight
  when `current/` still serves yesterday's file (its last reading is later than "now");
- one documented interval rule for every Today's Outlook file: the `Time` label is the instant
  the reading is stamped with (`interval_end` below); the raw label is kept too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from monitor.attributes import DemandAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.topics import CAISO
from producers.caiso_common import (
    csv_rows,
    day_bounds,
    decode_text,
    exists_in_pacific,
    number,
    pacific,
    pacific_day,
)
from producers.source import Fetcher, PollResult, Schedule

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$", re.ASCII)
_CURRENT = "Current demand"
_DA = "Day ahead forecast"
_HA = "Hour ahead forecast"
# A file whose last reading is this far past "now" is yesterday's (clock skew allowance).
_ROLLOVER_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class Row:
    label: str
    at: datetime
    current: float | None
    day_ahead: float | None
    hour_ahead: float | None


def _label_time(label: str) -> tuple[int, int]:
    m = _HHMM.match(label)
    if m is None:
        raise ParseError(f"demand.csv: Time is not HH:MM: {label[:20]!r}")
    hh, mm = int(m.group(1)), int(m.group(2))
    if hh > 24 or mm > 59:
        raise ParseError(f"demand.csv: Time out of range: {label!r}")
    return hh, mm


def read_rows(raw: bytes, day: date) -> list[Row]:
    text = decode_text(raw, "demand.csv")
    rows: list[Row] = []
    labels_seen: set[str] = set()
    for i, cells in enumerate(csv_rows(text, "demand.csv", ("Time",))):
        label = cells.get("Time", "")
        if not label:
            continue
        hh, mm = _label_time(label)
        if i > 0 and hh in (0, 24) and mm == 0:
            break  # the trailing midnight row belongs to the next day
        if label in labels_seen:
            continue  # a repeated label (collapsed fall-back hour published twice): first wins
        labels_seen.add(label)
        naive = datetime(day.year, day.month, day.day, hh, mm)  # noqa: DTZ001 - Pacific wall
        current = number(cells.get(_CURRENT), _CURRENT)
        da = number(cells.get(_DA), _DA)
        ha = number(cells.get(_HA), _HA)
        if not exists_in_pacific(naive) and current is None and da is None and ha is None:
            continue  # spring-forward placeholder rows
        rows.append(Row(label, pacific(naive), current, da, ha))
    if not rows:
        raise ParseError("demand.csv: no data rows")
    if not any(c in text.split("\n", 1)[0] for c in (_CURRENT, _DA, _HA)):
        raise ParseError("demand.csv: no demand or forecast column")
    return rows


def operating_day(raw_rows_latest_label: str | None, fetched_at: datetime) -> date:
    """Today in Pacific, or yesterday when the file's last reading is later than now."""
    today = pacific_day(fetched_at)
    if raw_rows_latest_label is None:
        return today
    hh, mm = _label_time(raw_rows_latest_label)
    latest = pacific(datetime(today.year, today.month, today.day, hh % 24, mm))  # noqa: DTZ001
    if latest > fetched_at + _ROLLOVER_SLACK:
        return today - timedelta(days=1)
    return today


def _latest_current_label(raw: bytes) -> str | None:
    text = decode_text(raw, "demand.csv")
    latest = None
    for i, cells in enumerate(csv_rows(text, "demand.csv", ("Time",))):
        label = cells.get("Time", "")
        if not label:
            continue
        if i > 0 and label in ("00:00", "24:00"):
            break
        if cells.get(_CURRENT, "").strip():
            latest = label
    return latest


def parse(raw: bytes, fetched_at: datetime, day: date | None = None,
          source_url: str | None = None) -> list[Condition]:
    """`day` is the operating day for `history/YYYYMMDD/` files; None means `current/`."""
    if day is None:
        day = operating_day(_latest_current_label(raw), fetched_at)
    rows = read_rows(raw, day)
    known = [r for r in rows if r.current is not None]
    latest = known[-1] if known else None
    peak = max(known, key=lambda r: r.current or 0.0) if known else None
    forecast = [r for r in rows if r.day_ahead is not None]
    da_peak = max(forecast, key=lambda r: r.day_ahead or 0.0) if forecast else None
    start, end = day_bounds(day)
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


class DemandSource:
    """`current/demand.csv`, 60-90 s after each 5-minute mark, with the CDN cache-buster."""

    name = "caiso-demand"
    topic = CAISO

    def __init__(self, outlook_url: str) -> None:
        self.url = f"{outlook_url.rstrip('/')}/current/demand.csv"
        self.schedule = Schedule(interval_s=300, offset_s=60, jitter_s=30)

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        resp = await fetch.get(self.url, cache_bust=True)
        return PollResult(conditions=tuple(parse(resp.body, resp.fetched_at or now,
                                                 source_url=self.url)))

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return last

