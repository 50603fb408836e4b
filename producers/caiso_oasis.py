"""OASIS `SLD_FCST` (system load forecast by TAC area) -> `caiso.peak_forecast` conditions.

Input is the zip as served (one CSV member named `{start}_{end}_SLD_FCST_{MKT}_{generated}_v1`)
or the CSV inside it. An XML member (`INVALID_REQUEST.xml.zip`) is an OASIS error, raised as
`OasisError` with its code: error 1000 means "no data (yet)", the others are real failures.

For every (TAC area, trade date) the peak of the hourly DAM, 2DA or 7DA forecast becomes one
condition `caiso.peak_forecast:<area>:<date>`; when a file holds several vintages of one day,
the freshest wins (DAM over 2DA over 7DA), so the condition is "the best forecast known now".
Only a forecast that covers every hour of its trade date is a day peak: an answer cut at a UTC
boundary covers 7, 8, 16 or 17 hours of a Pacific day, and its peak (a winter morning's HE8
when the evening is missing) is not the day's. Such a series is reported with the hours it
covers (`Forecasts.partial`) and makes no condition; a complete vintage of the same day still
does, and an answer with no complete day at all is a ParseError that names what it covers.
Rows are unsorted and `LOAD_TYPE`/`POS`/`GROUP` change between files: we key on market, area
and interval start only. OPR_HR is hour-ending (1..23 on spring-forward days, 1..25 on
fall-back days); the peak's instant comes from the UTC interval start, so DST needs no rule.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import structlog
from lxml import etree

from monitor.attributes import PeakForecastAttributes
from monitor.clock import PACIFIC
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.topics import CAISO
from producers.caiso_common import (
    csv_table,
    cut_mid_line,
    day_bounds,
    decode_text,
    number,
    pacific,
    pacific_day,
)
from producers.source import Fetcher, PollResult, Schedule

log = structlog.get_logger(__name__)

# The CAISO balancing-area TAC areas; WEIM areas are in the file too but are not CAISO's grid.
CAISO_TAC_AREAS: frozenset[str] = frozenset(
    {"CA ISO-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC", "MWD-TAC"})
HOURLY_MARKETS = ("DAM", "2DA", "7DA")
_FRESHNESS = {"DAM": 3, "2DA": 2, "7DA": 1}
_REQUIRED = ("INTERVALSTARTTIME_GMT", "OPR_DT", "OPR_HR", "MARKET_RUN_ID", "TAC_AREA_NAME", "MW")
_STAMP = re.compile(r"_([0-9]{8})_([0-9]{2})_([0-9]{2})_([0-9]{2})_v[0-9]+\.(?:csv|zip)$", re.I)
_MAX_UNZIPPED = 64 * 1024 * 1024
_HOUR = timedelta(hours=1)


class OasisError(ParseError):
    """An in-band OASIS error (HTTP 200 with an XML error document)."""

    def __init__(self, code: str, description: str) -> None:
        retriable = code in ("1000", "1010")
        super().__init__(f"OASIS error {code}: {description}",
                         reason="no_data" if code == "1000" else "oasis_error",
                         retriable=retriable)
        self.code = code


class HourlyValue(NamedTuple):
    market: str
    area: str
    trade_date: date
    hour_ending: int
    start: datetime
    mw: float


def oasis_error(xml: bytes) -> OasisError:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError:
        return OasisError("unknown", "unreadable XML error document")
    code = root.findtext(".//{*}ERR_CODE") or "unknown"
    desc = root.findtext(".//{*}ERR_DESC") or "no description"
    return OasisError(" ".join(code.split())[:20], " ".join(desc.split())[:200])


def unpack(raw: bytes) -> tuple[bytes, datetime | None]:
    """The CSV bytes and the generation stamp (Pacific) from the member name, if zipped."""
    if not raw.startswith(b"PK"):
        if raw.lstrip().startswith(b"<"):
            raise oasis_error(raw)
        return raw, None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if not members:
                raise ParseError("OASIS zip: empty archive")
            member = members[0]
            if member.file_size > _MAX_UNZIPPED:
                raise ParseError(f"OASIS zip: member of {member.file_size} bytes is too large")
            body = zf.read(member)
    except zipfile.BadZipFile as exc:
        raise ParseError(f"OASIS zip: corrupt archive: {exc}") from None
    except (EOFError, OSError, ValueError, NotImplementedError, zlib.error) as exc:
        raise ParseError(f"OASIS zip: unreadable member: {type(exc).__name__}") from None
    if member.filename.lower().endswith(".xml") or body.lstrip().startswith(b"<"):
        raise oasis_error(body)
    return body, _vintage(member.filename)


def _vintage(name: str) -> datetime | None:
    m = _STAMP.search(name)
    if not m:
        return None
    try:
        return pacific(datetime.strptime("".join(m.groups()), "%Y%m%d%H%M%S"))  # noqa: DTZ007
    except ValueError:
        return None


def hourly(raw: bytes, areas: frozenset[str] | None = None
           ) -> tuple[list[HourlyValue], datetime | None]:
    """Every hourly DAM/2DA/7DA value in the file (of `areas`, None = all), sorted, and the
    file's vintage."""
    body, vintage = unpack(raw)
    text = decode_text(body, "OASIS CSV")
    cut_mid_line(text, "OASIS CSV")
    # Most rows are other areas': they are turned away before being split.
    columns, rows = csv_table(text, "OASIS CSV", _REQUIRED,
                              None if areas is None else {"TAC_AREA_NAME": areas})
    at_start, at_date, at_hour, at_market, at_area, at_mw = (columns[c] for c in _REQUIRED)
    # A file repeats each interval start and trade date for every area and market: each
    # distinct string is parsed (and checked) once.
    starts: dict[str, datetime] = {}
    dates: dict[str, date] = {}
    values: dict[tuple[str, str, datetime], HourlyValue] = {}
    for row in rows:
        market = row[at_market].strip()
        if market not in _FRESHNESS:
            continue  # RTM rows are 5- and 15-minute forecasts
        area = row[at_area].strip()
        start_text, date_text = row[at_start].strip(), row[at_date].strip()
        try:
            start = starts.get(start_text) or starts.setdefault(
                start_text, datetime.fromisoformat(start_text))
            trade_date = dates.get(date_text) or dates.setdefault(
                date_text, date.fromisoformat(date_text))
            he = int(row[at_hour])
        except ValueError:
            raise ParseError(f"OASIS CSV: bad time fields in row {start_text[:30]!r}") from None
        if start.tzinfo is None or not 1 <= he <= 25:
            raise ParseError(f"OASIS CSV: bad interval {start_text[:30]!r} HE{he}")
        mw = number(row[at_mw], "MW")
        if mw is None:
            continue
        values[(market, area, start)] = HourlyValue(market, area, trade_date, he, start, mw)
    if not values:
        raise ParseError("OASIS CSV: no DAM, 2DA or 7DA rows"
                         + (" for the CAISO TAC areas" if areas is not None else ""))
    return [values[k] for k in sorted(values)], vintage


@dataclass(frozen=True)
class DaySeries:
    """One market's hourly forecast of one area's trade date, as far as the file covers it."""

    market: str
    area: str
    trade_date: date
    values: tuple[HourlyValue, ...]  # sorted by interval start
    hours: tuple[datetime, ...]  # the start of every hour of the trade date (23, 24 or 25)

    @property
    def hours_in_day(self) -> int:
        return len(self.hours)

    @property
    def hours_covered(self) -> tuple[int, ...]:
        return tuple(v.hour_ending for v in self.values)

    @property
    def complete(self) -> bool:
        return tuple(v.start for v in self.values) == self.hours

    def describe(self) -> str:
        """`7DA 2025-02-20 HE1-16 (16 of 24 hours)`."""
        covered = f"HE{hour_ranges(self.hours_covered)}" if self.values else "no hour"
        return (f"{self.market} {self.trade_date.isoformat()} {covered} "
                f"({len(self.values)} of {self.hours_in_day} hours)")


@dataclass(frozen=True)
class Forecasts:
    """What one OASIS answer says: a day peak per fully covered (area, trade date), and every
    series that covers only part of its trade date (none of them is a day peak)."""

    conditions: list[Condition]
    partial: list[DaySeries]


def hour_ranges(hours: tuple[int, ...]) -> str:
    """`1-16`, or `1-3,5-24` when an hour is missing inside."""
    spans: list[list[int]] = []
    for he in hours:
        if spans and he == spans[-1][1] + 1:
            spans[-1][1] = he
        else:
            spans.append([he, he])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def describe_partial(partial: list[DaySeries]) -> str:
    """Partial series grouped by what they cover: `7DA 2025-02-20 HE1-16 (16 of 24 hours) x6
    areas`, so an answer cut short for every area reads as one line."""
    groups: dict[str, int] = defaultdict(int)
    for s in partial:
        groups[s.describe()] += 1
    return "; ".join(f"{what} x{n} areas" if n > 1 else what for what, n in groups.items())


def forecasts(raw: bytes, fetched_at: datetime, source_url: str | None = None,
              areas: frozenset[str] | None = CAISO_TAC_AREAS) -> Forecasts:
    """`areas=None` keeps every TAC area in the file (WEIM areas included)."""
    values, vintage = hourly(raw, areas)
    grouped: dict[tuple[str, date], dict[str, list[HourlyValue]]] = defaultdict(
        lambda: defaultdict(list))
    for v in values:
        grouped[(v.area, v.trade_date)][v.market].append(v)
    # Rows are unsorted, so a cut between rows can take every row of a series and leave no
    # trace in it: each market forecasts every area of the file on each of its trade dates,
    # and a (market, area, date) missing from that grid is a series with no hours, partial.
    every_area = {area for area, _ in grouped}
    dates_of: dict[str, set[date]] = defaultdict(set)
    for v in values:
        dates_of[v.market].add(v.trade_date)
    for market, market_dates in dates_of.items():
        for area in every_area:
            for trade_date in market_dates:
                grouped[(area, trade_date)].setdefault(market, [])
    today = pacific_day(fetched_at)
    out: list[Condition] = []
    partial: list[DaySeries] = []
    hours: dict[date, tuple[datetime, ...]] = {}
    for (area, trade_date), by_market in sorted(grouped.items()):
        if trade_date not in hours:
            day_start, day_end = day_bounds(trade_date)
            hours[trade_date] = tuple(day_start + i * _HOUR
                                      for i in range(int((day_end - day_start) / _HOUR)))
        series = [DaySeries(m, area, trade_date, tuple(vs), hours[trade_date])
                  for m, vs in by_market.items()]
        partial += [s for s in series if not s.complete]
        whole = [s for s in series if s.complete]
        if not whole:
            continue
        best = max(whole, key=lambda s: _FRESHNESS[s.market])
        peak = max(best.values, key=lambda v: v.mw)  # a tie: the first (earliest) hour
        start, end = day_bounds(trade_date)
        out.append(Condition(
            id=f"caiso.peak_forecast:{area}:{trade_date.isoformat()}",
            kind=Kind.CAISO_PEAK_FORECAST, severity=Severity.INFO,
            status=Status.ENDED if trade_date < today else Status.ACTIVE,
            window=Window(start=start, end=end), regions=(area,),
            attributes=PeakForecastAttributes(
                area=area, trade_date=trade_date, market_run=best.market,
                peak_mw=peak.mw, hour_ending=peak.hour_ending, peak_at=peak.start,
                vintage=vintage),
            revision=0, observed_at=fetched_at, source_url=source_url))
    if not out:
        covered = describe_partial(partial)[:300]
        raise ParseError(f"OASIS CSV: no trade date covered in full: {covered}")
    return Forecasts(out, partial)


def parse(raw: bytes, fetched_at: datetime, source_url: str | None = None,
          areas: frozenset[str] | None = CAISO_TAC_AREAS) -> list[Condition]:
    """The day peaks of the fully covered trade dates (`forecasts` also names the rest)."""
    return forecasts(raw, fetched_at, source_url, areas).conditions


# -- the polled source ------------------------------------------------------------------------

# DAM, 2DA and 7DA are published daily at about 09:10 Pacific; until noon a missing DAM for
# tomorrow is retried every poll (error 1000 means "not yet"), then not again until tomorrow.
PUBLISH_AT = time(9, 10)
GIVE_UP_AT = time(12, 0)
_SPAN_DAYS = {"DAM": 2, "2DA": 3, "7DA": 9}


def _oasis_time(day: date) -> str:
    start, _ = day_bounds(day)
    return start.strftime("%Y%m%dT%H:%M-0000")


class OasisSource:
    """One source owns every OASIS request, so its 5-second spacing is process-wide."""

    name = "caiso-oasis"
    topic = CAISO

    def __init__(self, url: str, areas: frozenset[str] = CAISO_TAC_AREAS) -> None:
        self.url = url
        self.areas = areas
        self.schedule = Schedule(interval_s=600, offset_s=30, jitter_s=30, min_spacing_s=5.0,
                                 backoff_initial_s=10.0, backoff_max_s=600.0)
        self._best: dict[str, Condition] = {}
        self._fetched_on: date | None = None  # Pacific day of the last full fetch
        self._complete_on: date | None = None  # the day whose 09:10 publication we have

    def _due(self, now: datetime) -> bool:
        local = now.astimezone(PACIFIC)
        today = local.date()
        if self._fetched_on is None:
            return True  # first poll: learn what is published now
        if local.time() < PUBLISH_AT:
            return self._fetched_on != today and self._complete_on != today - timedelta(days=1)
        if self._complete_on == today:
            return False
        return local.time() < GIVE_UP_AT or self._fetched_on != today

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        if not self._due(now):
            return PollResult(unchanged=True)
        today = pacific_day(now)
        fresh: list[Condition] = []
        for market in HOURLY_MARKETS:
            params = {"resultformat": "6", "queryname": "SLD_FCST", "version": "1",
                      "market_run_id": market, "startdatetime": _oasis_time(today),
                      "enddatetime": _oasis_time(today + timedelta(days=_SPAN_DAYS[market]))}
            resp = await fetch.get(self.url, params=params)
            try:
                answer = forecasts(resp.body, resp.fetched_at or now, source_url=self.url,
                                   areas=self.areas)
            except OasisError as exc:
                if exc.code != "1000":
                    raise
                log.info("oasis_not_published", market=market, day=today.isoformat())
                continue
            if answer.partial:
                # Whole days were asked for: a cut answer is worth a look, not a day peak.
                log.warning("oasis_partial_days", market=market, count=len(answer.partial),
                            partial=describe_partial(answer.partial)[:400])
            fresh.extend(answer.conditions)
        for c in fresh:
            kept = self._best.get(c.id)
            if kept is None or _fresher_or_same(c, kept):
                self._best[c.id] = c
        self._fetched_on = today
        tomorrow = (today + timedelta(days=1)).isoformat()
        if now.astimezone(PACIFIC).time() >= PUBLISH_AT and any(
                c.id.endswith(f":{tomorrow}") and _market(c) == "DAM" for c in fresh):
            self._complete_on = today
        horizon = today - timedelta(days=1)
        self._best = {k: v for k, v in self._best.items() if _trade_date(v) >= horizon}
        return PollResult(conditions=tuple(self._best.values()))

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        return last


def _market(c: Condition) -> str:
    assert isinstance(c.attributes, PeakForecastAttributes)
    return c.attributes.market_run


def _trade_date(c: Condition) -> date:
    assert isinstance(c.attributes, PeakForecastAttributes)
    return c.attributes.trade_date


def _fresher_or_same(new: Condition, old: Condition) -> bool:
    return _FRESHNESS.get(_market(new), 0) >= _FRESHNESS.get(_market(old), 0)
