"""OASIS `SLD_FCST` (system load forecast by TAC area) -> `caiso.peak_forecast` conditions.

Input is the zip as served (one CSV member named `{start}_{end}_SLD_FCST_{MKT}_{generated}_v1`)
or the CSV inside it. An XML member (`INVALID_REQUEST.xml.zip`) is an OASIS error, raised as
`OasisError` with its code: error 1000 means "no data (yet)", the others are real failures.

For every (TAC area, trade date) the peak of the hourly DAM, 2DA or 7DA forecast becomes one
condition `caiso.peak_forecast:<area>:<date>`; when a file holds several vintages of one day,
the freshest wins (DAM over 2DA over 7DA), so the condition is "the best forecast known now".
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

import structlog
from lxml import etree

from monitor.attributes import PeakForecastAttributes
from monitor.clock import PACIFIC
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.topics import CAISO
from producers.caiso_common import (
    csv_rows,
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


class OasisError(ParseError):
    """An in-band OASIS error (HTTP 200 with an XML error document)."""

    def __init__(self, code: str, description: str) -> None:
        retriable = code in ("1000", "1010")
        super().__init__(f"OASIS error {code}: {description}",
                         reason="no_data" if code == "1000" else "oasis_error",
                         retriable=retriable)
        self.code = code


@dataclass(frozen=True)
class HourlyValue:
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
    values: dict[tuple[str, str, datetime], HourlyValue] = {}
    for row in csv_rows(text, "OASIS CSV", _REQUIRED):
        market = row["MARKET_RUN_ID"]
        if market not in HOURLY_MARKETS:
            continue  # RTM rows are 5- and 15-minute forecasts
        area = row["TAC_AREA_NAME"]
        if areas is not None and area not in areas:
            continue
        try:
            start = datetime.fromisoformat(row["INTERVALSTARTTIME_GMT"])
            trade_date = date.fromisoformat(row["OPR_DT"])
            he = int(row["OPR_HR"])
        except ValueError:
            raise ParseError(f"OASIS CSV: bad time fields in row "
                             f"{row['INTERVALSTARTTIME_GMT'][:30]!r}") from None
        if start.tzinfo is None or not 1 <= he <= 25:
            raise ParseError(f"OASIS CSV: bad interval {row['INTERVALSTARTTIME_GMT'][:30]!r} "
                             f"HE{he}")
        mw = number(row["MW"], "MW")
        if mw is None:
            continue
        values[(market, area, start)] = HourlyValue(market, area, trade_date, he, start, mw)
    if not values:
        raise ParseError("OASIS CSV: no DAM, 2DA or 7DA rows"
                         + (" for the CAISO TAC areas" if areas is not None else ""))
    return [values[k] for k in sorted(values)], vintage


def parse(raw: bytes, fetched_at: datetime, source_url: str | None = None,
          areas: frozenset[str] | None = CAISO_TAC_AREAS) -> list[Condition]:
    """`areas=None` keeps every TAC area in the file (WEIM areas included)."""
    values, vintage = hourly(raw, areas)
    series: dict[tuple[str, date], dict[str, list[HourlyValue]]] = defaultdict(
        lambda: defaultdict(list))
    for v in values:
        series[(v.area, v.trade_date)][v.market].append(v)
    today = pacific_day(fetched_at)
    out: list[Condition] = []
    for (area, trade_date), by_market in sorted(series.items()):
        market = max(by_market, key=lambda m: _FRESHNESS[m])
        peak = max(by_market[market], key=lambda v: (v.mw, -v.start.timestamp()))
        start, end = day_bounds(trade_date)
        out.append(Condition(
            id=f"caiso.peak_forecast:{area}:{trade_date.isoformat()}",
            kind=Kind.CAISO_PEAK_FORECAST, severity=Severity.INFO,
            status=Status.ENDED if trade_date < today else Status.ACTIVE,
            window=Window(start=start, end=end), regions=(area,),
            attributes=PeakForecastAttributes(
                area=area, trade_date=trade_date, market_run=market,
                peak_mw=peak.mw, hour_ending=peak.hour_ending, peak_at=peak.start,
                vintage=vintage),
            revision=0, observed_at=fetched_at, source_url=source_url))
    return out


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
                fresh.extend(parse(resp.body, resp.fetched_at or now, source_url=self.url,
                                   areas=self.areas))
            except OasisError as exc:
                if exc.code != "1000":
                    raise
                log.info("oasis_not_published", market=market, day=today.isoformat())
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
