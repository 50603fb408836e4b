"""The CAISO parsers on every real fixture (values asserted) and on constructed edge cases."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime

import pytest

from monitor.attributes import (
    DemandAttributes,
    NoticeAttributes,
    PeakForecastAttributes,
    RaOutlookAttributes,
    StatusAttributes,
)
from monitor.errors import ParseError
from monitor.events import Kind, Severity, Status
from producers import caiso_demand, caiso_flex, caiso_oasis, caiso_ra, caiso_stats
from producers.caiso_common import PACIFIC
from tests.producers.helpers import CAISO_FIXTURES as F
from tests.producers.helpers import NEW, OLD, demand_file, full_day

OASIS_CSV = F / "oasis" / "sld_fcst_20250127_20250129_all_markets.csv"
OASIS_TAC_ONLY = F / "oasis" / "sld_fcst_20250127_20250129_ca_iso_tac_only.derived.csv"
OASIS_7DA_ZIP = F / "oasis" / "sld_fcst_7da_20250219_20250227.zip"
# The real 7DA rows of two UTC days: 02-19 HE17-24, all of 02-20, 02-21 HE1-16.
OASIS_UTC_DAYS = F / "oasis" / "sld_fcst_7da_utc_20250220_20250222.derived.csv"


def pt(*args: int) -> datetime:
    return datetime(*args, tzinfo=PACIFIC).astimezone(UTC)  # type: ignore[misc]


# -- OASIS ------------------------------------------------------------------------------------

def test_oasis_dam_peak_for_ca_iso_tac_on_2025_01_27() -> None:
    conditions = {c.id: c for c in caiso_oasis.parse(OASIS_CSV.read_bytes(), pt(2025, 1, 27, 1))}
    c = conditions["caiso.peak_forecast:CA ISO-TAC:2025-01-27"]
    a = c.attributes
    assert isinstance(a, PeakForecastAttributes)
    assert (a.market_run, a.peak_mw, a.hour_ending) == ("DAM", 27945.29, 19)
    assert a.peak_at == datetime(2025, 1, 28, 2, tzinfo=UTC)  # HE19 = 18:00-19:00 PST
    assert c.kind is Kind.CAISO_PEAK_FORECAST and c.status is Status.ACTIVE
    # The CAISO TAC areas add up to the system at HE19.
    parts = {area: conditions[f"caiso.peak_forecast:{area}:2025-01-27"].attributes
             for area in ("PGE-TAC", "SCE-TAC", "SDGE-TAC")}
    assert parts["SCE-TAC"].peak_mw == 12420.56  # type: ignore[attr-defined]
    assert parts["PGE-TAC"].peak_mw == 12594.83  # type: ignore[attr-defined]
    assert parts["SDGE-TAC"].peak_mw == 2712.31  # type: ignore[attr-defined]
    # 01-28 has no DAM in the file: the freshest vintage there is 2DA.
    assert conditions["caiso.peak_forecast:CA ISO-TAC:2025-01-28"].attributes.market_run == "2DA"  # type: ignore[attr-defined]
    # WEIM areas are filtered out by default; all 35 names are kept on request.
    assert not any(":AZPS:" in cid for cid in conditions)
    every = caiso_oasis.parse(OASIS_CSV.read_bytes(), pt(2025, 1, 27, 1), areas=None)
    assert len({c.attributes.area for c in every}) == 34  # type: ignore[attr-defined]


def test_oasis_vintages_of_he19_differ() -> None:
    values, vintage = caiso_oasis.hourly(OASIS_CSV.read_bytes())
    he19 = {v.market: v.mw for v in values
            if v.area == "CA ISO-TAC" and v.trade_date == date(2025, 1, 27) and v.hour_ending == 19}
    assert he19 == {"DAM": 27945.29, "2DA": 28329.27, "7DA": 28214.84}
    assert vintage is None  # a bare CSV carries no generation stamp
    # The rows are unsorted in the file; hourly() returns them sorted per series.
    dam = [v for v in values if v.market == "DAM" and v.area == "CA ISO-TAC"]
    assert [v.hour_ending for v in dam] == list(range(1, 25))


def test_oasis_derived_tac_only_csv_gives_the_same_peaks() -> None:
    full = {c.id: c.attributes for c in caiso_oasis.parse(OASIS_CSV.read_bytes(),
                                                         pt(2025, 1, 27, 1))}
    derived = caiso_oasis.parse(OASIS_TAC_ONLY.read_bytes(), pt(2025, 1, 27, 1))
    assert [c.id for c in derived] == ["caiso.peak_forecast:CA ISO-TAC:2025-01-27",
                                       "caiso.peak_forecast:CA ISO-TAC:2025-01-28"]
    for c in derived:
        assert c.attributes == full[c.id]


def test_oasis_7da_zip_as_served() -> None:
    conditions = caiso_oasis.parse(OASIS_7DA_ZIP.read_bytes(), pt(2025, 2, 21, 10))
    by_id = {c.id: c for c in conditions}
    assert len(conditions) == 6 * 8  # six CAISO TAC areas x eight trade dates
    c = by_id["caiso.peak_forecast:CA ISO-TAC:2025-02-19"]
    a = c.attributes
    assert isinstance(a, PeakForecastAttributes)
    assert (a.market_run, a.peak_mw, a.hour_ending) == ("7DA", 26191.41, 19)
    assert a.vintage == pt(2025, 2, 21, 1, 9, 58)
    assert c.status is Status.ENDED  # a past trade date as of the fetch
    assert by_id["caiso.peak_forecast:CA ISO-TAC:2025-02-26"].status is Status.ACTIVE
    _, vintage = caiso_oasis.hourly(OASIS_7DA_ZIP.read_bytes())
    assert vintage == pt(2025, 2, 21, 1, 9, 58)
    every = caiso_oasis.parse(OASIS_7DA_ZIP.read_bytes(), pt(2025, 2, 21, 10), areas=None)
    areas_by_day: dict[date, set[str]] = {}
    for c in every:
        areas_by_day.setdefault(c.attributes.trade_date, set()).add(c.attributes.area)  # type: ignore[attr-defined]
    # The set of TAC areas grows mid-file (33 -> 34 on 02-23).
    assert len(areas_by_day[date(2025, 2, 22)]) == 33
    assert len(areas_by_day[date(2025, 2, 23)]) == 34


def test_oasis_answer_cut_at_utc_midnight_gives_only_the_whole_day() -> None:
    got = caiso_oasis.forecasts(OASIS_UTC_DAYS.read_bytes(), pt(2025, 2, 21, 10))
    assert {c.attributes.trade_date for c in got.conditions} == {date(2025, 2, 20)}  # type: ignore[attr-defined]
    assert len(got.conditions) == 6
    # The whole day's peaks are those of the file it was cut from.
    served = {c.id: c.attributes for c in caiso_oasis.parse(OASIS_7DA_ZIP.read_bytes(),
                                                           pt(2025, 2, 21, 10))}
    for c in got.conditions:
        a, b = c.attributes, served[c.id]
        assert isinstance(a, PeakForecastAttributes) and isinstance(b, PeakForecastAttributes)
        assert (a.peak_mw, a.hour_ending, a.peak_at) == (b.peak_mw, b.hour_ending, b.peak_at)
    covered = {(s.area, s.trade_date): s for s in got.partial}
    assert len(got.partial) == 12
    evening = covered[("CA ISO-TAC", date(2025, 2, 19))]
    morning = covered[("CA ISO-TAC", date(2025, 2, 21))]
    assert evening.hours_covered == tuple(range(17, 25)) and not evening.complete
    assert morning.hours_covered == tuple(range(1, 17)) and morning.hours_in_day == 24
    # What a "day peak" of the cut 02-21 would have said: the morning HE8, where the whole
    # day peaks at HE19 (25,845.56 MW in the served file).
    would_be = max(morning.values, key=lambda v: v.mw)
    assert (would_be.hour_ending, would_be.mw) == (8, 24664.26)
    assert served["caiso.peak_forecast:CA ISO-TAC:2025-02-21"].hour_ending == 19  # type: ignore[attr-defined]
    assert caiso_oasis.describe_partial(got.partial) == (
        "7DA 2025-02-19 HE17-24 (8 of 24 hours) x6 areas; "
        "7DA 2025-02-21 HE1-16 (16 of 24 hours) x6 areas")


def test_oasis_answer_with_no_whole_day_is_an_error_naming_the_hours() -> None:
    # One UTC day of the derived file: 8 hours of 02-19 (whose partial peak happens to be the
    # day's HE19) and 16 of 02-20 (whose partial peak is the morning HE8): neither is a day peak.
    lines = OASIS_UTC_DAYS.read_text().splitlines(keepends=True)
    one_day = "".join([lines[0], *(ln for ln in lines[1:] if ln < "2025-02-21")]).encode()
    with pytest.raises(ParseError) as info:
        caiso_oasis.parse(one_day, pt(2025, 2, 21, 10))
    assert str(info.value) == (
        "OASIS CSV: no trade date covered in full: 7DA 2025-02-19 HE17-24 (8 of 24 hours) "
        "x6 areas; 7DA 2025-02-20 HE1-16 (16 of 24 hours) x6 areas")


def test_oasis_partial_dam_leaves_the_day_to_a_whole_2da() -> None:
    # Constructed from the real file: CA ISO-TAC's DAM rows after HE8 removed.
    lines = OASIS_CSV.read_text().splitlines(keepends=True)
    cut = [ln for ln in lines if not (",DAM,CA ISO-TAC," in ln and int(ln.split(",")[4]) > 8)]
    got = caiso_oasis.forecasts("".join(cut).encode(), pt(2025, 1, 27, 1))
    by_id = {c.id: c.attributes for c in got.conditions}
    a = by_id["caiso.peak_forecast:CA ISO-TAC:2025-01-27"]
    assert isinstance(a, PeakForecastAttributes)
    assert (a.market_run, a.peak_mw, a.hour_ending) == ("2DA", 28329.27, 19)
    assert by_id["caiso.peak_forecast:SCE-TAC:2025-01-27"].market_run == "DAM"  # type: ignore[attr-defined]
    assert [s.describe() for s in got.partial] == ["DAM 2025-01-27 HE1-8 (8 of 24 hours)"]


def test_oasis_summer_day_cut_at_utc_midnight_covers_17_and_7_hours() -> None:
    # Synthetic: two PDT days; 00:00 UTC is 17:00 PDT, so the cut falls after HE17.
    rows = [synthetic_day(date(2025, 7, 1), 18), synthetic_day(date(2025, 7, 2), 18)]
    body = rows[0] + rows[1].split(b"\n", 1)[1]
    lines = body.decode().splitlines(keepends=True)
    cut = "".join([lines[0], *(ln for ln in lines[1:]
                              if "2025-07-02T00:00" <= ln[:16] < "2025-07-03T00:00")])
    with pytest.raises(ParseError, match=r"DAM 2025-07-01 HE18-24 \(7 of 24 hours\); "
                                         r"DAM 2025-07-02 HE1-17 \(17 of 24 hours\)"):
        caiso_oasis.parse(cut.encode(), pt(2025, 7, 1, 12), areas=frozenset({"CA ISO-TAC"}))


def test_oasis_missing_hour_inside_the_day_is_partial() -> None:
    lines = synthetic_day(date(2025, 1, 27), 19).decode().splitlines(keepends=True)
    del lines[5]  # HE5
    with pytest.raises(ParseError, match=r"HE1-4,6-24 \(23 of 24 hours\)"):
        caiso_oasis.parse("".join(lines).encode(), pt(2025, 1, 27, 1))


def error_zip(code: str, desc: str) -> bytes:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<m:OASISReport xmlns:m="http://www.caiso.com/'
           f'soa/OASISReport_v1.xsd">\n<m:MessagePayload>\n<m:RTO>\n<m:name>CAISO</m:name>\n'
           f'<m:ERROR>\n<m:ERR_CODE>{code}</m:ERR_CODE>\n<m:ERR_DESC>{desc}</m:ERR_DESC>\n'
           f'</m:ERROR>\n</m:RTO>\n</m:MessagePayload>\n</m:OASISReport>\n').encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("INVALID_REQUEST.xml", xml)
    return buf.getvalue()


@pytest.mark.parametrize(("code", "reason"), [("1001", "oasis_error"), ("1000", "no_data")])
def test_oasis_xml_error_zip_is_an_error_not_data(code: str, reason: str) -> None:
    with pytest.raises(caiso_oasis.OasisError) as info:
        caiso_oasis.parse(error_zip(code, "Invalid Parameters of the given report name"),
                          pt(2026, 7, 27, 14))
    assert info.value.code == code and info.value.reason == reason
    assert "Invalid Parameters" in str(info.value)


HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,LOAD_TYPE,OPR_DT,OPR_HR,OPR_INTERVAL,"
          "MARKET_RUN_ID,TAC_AREA_NAME,LABEL,XML_DATA_ITEM,POS,MW,EXECUTION_TYPE,GROUP\n")


def synthetic_day(day: date, peak_he: int) -> bytes:
    """A DAM day for CA ISO-TAC built from the UTC hours of the Pacific day (synthetic)."""
    from producers.caiso_common import day_bounds
    start, end = day_bounds(day)
    hours = int((end - start).total_seconds() // 3600)
    lines = [HEADER]
    for he in range(1, hours + 1):
        s = start.timestamp() + (he - 1) * 3600
        a = datetime.fromtimestamp(s, UTC).isoformat().replace("+00:00", "-00:00")
        b = datetime.fromtimestamp(s + 3600, UTC).isoformat().replace("+00:00", "-00:00")
        mw = 30000 if he == peak_he else 20000 + he
        lines.append(f"{a},{b},1,{day},{he},0,DAM,CA ISO-TAC,Demand Forecast Day Ahead,"
                     f"SYS_FCST_DA_MW,2,{mw},DAM,79\n")
    return "".join(lines).encode()


@pytest.mark.parametrize(("day", "peak_he", "local_hour"), [
    (date(2026, 3, 8), 23, 23),   # 23-hour day: HE23 is the last hour, 22:00-23:00 PDT
    (date(2026, 11, 1), 25, 23),  # 25-hour day: HE25 is 23:00-24:00 PST
    (date(2026, 11, 1), 2, 1),    # HE2 is the first 01:00-02:00 (PDT)
])
def test_oasis_dst_days(day: date, peak_he: int, local_hour: int) -> None:
    [c] = caiso_oasis.parse(synthetic_day(day, peak_he), pt(2026, 3, 1), areas=frozenset(
        {"CA ISO-TAC"}))
    a = c.attributes
    assert isinstance(a, PeakForecastAttributes)
    assert a.hour_ending == peak_he and a.peak_mw == 30000
    assert a.peak_at is not None and a.peak_at.astimezone(PACIFIC).hour == local_hour
    assert (c.window.end - c.window.start).total_seconds() / 3600 == (  # type: ignore[operator]
        23 if day.month == 3 else 25)


# -- RA outlook -------------------------------------------------------------------------------

RA_11 = F / "outlook" / "history_20260311_rtm_forecast_7day.csv"
RA_12 = F / "outlook" / "history_20260312_rtm_forecast_7day.csv"


def test_ra_outlook_minimum_margin_per_day_from_the_0311_file() -> None:
    conditions = caiso_ra.parse(RA_11.read_bytes(), pt(2026, 3, 11, 8))
    got = {c.attributes.operating_day: c.attributes for c in conditions}  # type: ignore[attr-defined]
    # 03/10 appears only as the file's first row (its last interval): not a day of its own.
    assert sorted(got) == [date(2026, 3, d) for d in range(11, 19)]
    expected = {11: (6538, 26901), 12: (4026, 28758), 16: (2523, 30327), 17: (1541, 31892),
                18: (2234, 31738)}
    for d, (margin, peak) in expected.items():
        a = got[date(2026, 3, d)]
        assert isinstance(a, RaOutlookAttributes)
        assert (a.min_margin_mw, a.forecast_peak_mw) == (margin, peak)
        # Interval-ending: the minimum falls in the interval that ends at 19:05.
        assert a.min_margin_interval_end == pt(2026, 3, d, 19, 5)
        assert a.published == date(2026, 3, 11)
    c17 = next(c for c in conditions if c.id == "caiso.ra-margin:2026-03-17")
    assert c17.status is Status.ACTIVE and c17.kind is Kind.CAISO_RA_OUTLOOK
    assert c17.attributes.ra_capacity_mw - c17.attributes.demand_forecast_mw - (  # type: ignore[attr-defined]
        c17.attributes.reserve_requirement_mw) == 1541  # type: ignore[attr-defined]


def test_ra_outlook_next_day_file_revises_the_margins() -> None:
    got = {c.id: c.attributes for c in caiso_ra.parse(RA_12.read_bytes(), pt(2026, 3, 12, 8))}
    assert sorted(got)[0] == "caiso.ra-margin:2026-03-12"
    assert sorted(got)[-1] == "caiso.ra-margin:2026-03-19"
    assert got["caiso.ra-margin:2026-03-17"].min_margin_mw == -2  # type: ignore[attr-defined]
    assert got["caiso.ra-margin:2026-03-12"].min_margin_mw == 3569  # type: ignore[attr-defined]


def test_ra_outlook_without_forecast_columns_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="header lacks"):
        caiso_ra.parse(b"Time,Demand\n03/11/2026 00:05,1\n", pt(2026, 3, 11))


# -- Flex Alert API ---------------------------------------------------------------------------

def test_flex_active_example_lifecycle_and_legacy_regions() -> None:
    raw = (F / "flexalert" / "active_example_2021-06-11.json").read_bytes()
    by_id = {c.id: c for c in caiso_flex.parse(raw, pt(2021, 6, 11, 9, 5))}
    assert sorted(by_id) == ["caiso.flex:1", "caiso.flex:2", "caiso.flex:6"]
    six = by_id["caiso.flex:6"]
    assert six.status is Status.ACTIVE and six.severity is Severity.WATCH
    assert six.regions == ("Northern CA Region", "VEA Region")
    assert (six.window.start, six.window.end) == (pt(2021, 6, 11, 9), pt(2021, 6, 11, 21))
    assert by_id["caiso.flex:1"].status is Status.SCHEDULED
    assert by_id["caiso.flex:1"].regions == ("CAISO Grid",)  # Statewide
    assert by_id["caiso.flex:2"].regions == ("Southern CA Region",)
    assert isinstance(six.attributes, NoticeAttributes) and six.attributes.flex_alert_id == 6


@pytest.mark.parametrize("name", ["inactive_2026-04-21.json", "inactive_2026-04-21.xml"])
def test_flex_inactive_json_and_xml(name: str) -> None:
    assert caiso_flex.parse((F / "flexalert" / name).read_bytes(), pt(2026, 4, 21, 15)) == []


def test_flex_xml_with_an_alert_and_iso_dates() -> None:
    xml = b"""<ActiveFlexAlertEventsDTO xmlns:i="http://www.w3.org/2001/XMLSchema-instance"
 xmlns="http://schemas.datacontract.org/2004/07/Caiso.TodaysOutlook.Common.DTO">
 <Active><FlexAlertEventDTO><EndDate>2024-09-05T21:00:00</EndDate><ID>12</ID>
 <Region>CAISO Grid</Region><StartDate>2024-09-05T16:00:00</StartDate>
 <Title>Flex Alert</Title></FlexAlertEventDTO></Active><Future />
 <IsFlexAlertActive>true</IsFlexAlertActive><UpdatedOn>2024-06-17T15:19:40Z</UpdatedOn>
</ActiveFlexAlertEventsDTO>"""
    [c] = caiso_flex.parse(xml, pt(2024, 9, 5, 16, 30))
    assert c.id == "caiso.flex:12" and c.status is Status.ACTIVE
    assert c.window.start == pt(2024, 9, 5, 16)


@pytest.mark.parametrize("body", [
    b'{"IsFlexAlertActive": true, "Active": [], "Future": []}',  # contradicts itself
    b'{"Active": [], "Future": []}',  # flag missing
    b'{"IsFlexAlertActive": false, "Future": []}',  # list missing
    b'<html><body>Service Unavailable</body></html>',
])
def test_flex_malformed_is_never_all_clear(body: bytes) -> None:
    with pytest.raises(ParseError):
        caiso_flex.parse(body, pt(2026, 4, 21, 15))


def test_flex_disappeared_before_start_is_cancelled_after_end_ended() -> None:
    raw = (F / "flexalert" / "active_example_2021-06-11.json").read_bytes()
    by_id = {c.id: c for c in caiso_flex.parse(raw, pt(2021, 6, 11, 9, 5))}
    source = caiso_flex.FlexSource("http://127.0.0.1/flex")
    assert source.disappeared(by_id["caiso.flex:1"], pt(2021, 6, 12)).status is Status.CANCELLED
    gone = source.disappeared(by_id["caiso.flex:6"], pt(2021, 6, 11, 22))
    assert gone.status is Status.ENDED and gone.window.end == pt(2021, 6, 11, 21)
    early = source.disappeared(by_id["caiso.flex:6"], pt(2021, 6, 11, 15))
    assert early.status is Status.ENDED and early.window.end == pt(2021, 6, 11, 15)


# -- stats.txt --------------------------------------------------------------------------------

def stats(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_stats_fields_strings_and_separators() -> None:
    # Synthetic body with the 2022-08-31 13:05 values recorded in sources-caiso.md.
    raw = stats(slotDate="8/31/2022 13:05", gridstatus=["Restricted Maintenance Operations"],
                Current_reserve="3,560", Required_reserve=2100, CurrentSystemDemand="41,234",
                TodaysPeakDemand=41500, TodaysPeakDemandTS="202208311300",
                todayForecastPeakDemand="46,911", tomorrowsForecastPeakDemand=48321.5)
    [c] = caiso_stats.parse(raw, pt(2022, 8, 31, 13, 6))
    a = c.attributes
    assert isinstance(a, StatusAttributes)
    assert a.as_of == pt(2022, 8, 31, 13, 5)
    assert a.grid_status == ("Restricted Maintenance Operations",)
    assert a.label_kinds == ("caiso.rmo",) and c.severity is Severity.ADVISORY
    assert (a.current_reserve_mw, a.current_demand_mw, a.todays_forecast_peak_mw) == (
        3560, 41234, 46911)
    assert a.todays_peak_at == pt(2022, 8, 31, 13, 0)
    assert a.tomorrows_forecast_peak_mw == 48321.5


@pytest.mark.parametrize(("labels", "kinds", "severity"), [
    (["Normal"], (), Severity.INFO),
    (["Flex Alert", "Restricted Maintenance Operations"], ("caiso.flex_alert", "caiso.rmo"),
     Severity.WATCH),
    (["Energy Emergency Alert (EEA) 3"], ("caiso.eea",), Severity.CRITICAL),
    (["EEA Watch"], ("caiso.eea",), Severity.WATCH),
    (["EEA 2"], ("caiso.eea",), Severity.EMERGENCY),
    (["Transmission Emergency"], ("caiso.transmission_emergency",), Severity.WARNING),
    (["Something New"], (), Severity.ADVISORY),
])
def test_stats_labels_map_onto_kinds(labels: list[str], kinds: tuple[str, ...],
                                     severity: Severity) -> None:
    [c] = caiso_stats.parse(stats(gridstatus=labels), pt(2022, 9, 6, 17))
    assert c.attributes.label_kinds == kinds and c.severity is severity  # type: ignore[attr-defined]
    assert c.attributes.grid_status == tuple(labels)  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", [stats(Current_reserve=3000), stats(gridstatus=[]),
                                 stats(gridstatus="Normal", Current_reserve="lots"),
                                 b"<html>maintenance</html>", b"[]"])
def test_stats_without_labels_or_with_bad_numbers_is_an_error_never_normal(raw: bytes) -> None:
    with pytest.raises(ParseError):
        caiso_stats.parse(raw, pt(2022, 9, 6, 17))


def test_stats_zero_tomorrow_means_not_published() -> None:
    [c] = caiso_stats.parse(stats(gridstatus=["Normal"], tomorrowsForecastPeakDemand=0),
                            pt(2022, 9, 6, 17))
    assert c.attributes.tomorrows_forecast_peak_mw is None  # type: ignore[attr-defined]


# -- demand.csv -------------------------------------------------------------------------------

def minutes(hh: int, mm: int = 0) -> int:
    return hh * 60 + mm


@pytest.mark.parametrize("header", [NEW, OLD])
def test_demand_both_headers_blank_future_rows(header: str) -> None:
    rows = full_day(minutes(17, 55))
    if header == OLD:
        rows = [r.rsplit(",", 1)[0] for r in rows]
    [c] = caiso_demand.parse(demand_file(header, rows), pt(2026, 3, 11, 18, 1))
    a = c.attributes
    assert isinstance(a, DemandAttributes)
    assert a.operating_day == date(2026, 3, 11)
    assert a.interval_label == "17:55" and a.interval_end == pt(2026, 3, 11, 17, 55)
    assert a.current_mw == 20000 + minutes(17, 55) and a.day_ahead_forecast_mw == 30018
    # The opening 00:00 closes the previous day: neither its 29999 MW reading nor its HE24
    # forecast of 31000 MW is this day's.
    assert a.todays_peak_mw == 20000 + minutes(17, 55)
    assert a.day_ahead_peak_mw == 30024
    # HE24 runs from the 23:05 row through the closing 00:00 row; its first interval ends 23:05.
    assert a.day_ahead_peak_at == pt(2026, 3, 11, 23, 5)


def test_demand_closing_midnight_row_ends_the_day() -> None:
    # A finished day (history/20260311/demand.csv): the closing 00:00 is its last reading.
    raw = demand_file(NEW, full_day(minutes(24)))
    [c] = caiso_demand.parse(raw, pt(2026, 3, 12, 9), day=date(2026, 3, 11))
    a = c.attributes
    assert isinstance(a, DemandAttributes)
    assert a.interval_label == "00:00" and a.interval_end == pt(2026, 3, 12)
    assert a.current_mw == a.todays_peak_mw == 20000 + minutes(24)
    assert a.todays_peak_at == pt(2026, 3, 12) and c.status is Status.ENDED


@pytest.mark.parametrize("known_until", [minutes(23, 55), minutes(24)])
def test_demand_midnight_rollover_serves_yesterdays_file(known_until: int) -> None:
    raw = demand_file(NEW, full_day(known_until))
    # 00:03 Pacific on 03/12: the file's last reading (23:55, or the closing 00:00 that ends
    # 03/11) is later than "now" if read as 03/12's.
    [c] = caiso_demand.parse(raw, pt(2026, 3, 12, 0, 3))
    assert c.attributes.operating_day == date(2026, 3, 11)  # type: ignore[attr-defined]
    assert c.id == "caiso.demand:2026-03-11" and c.status is Status.ENDED
    assert c.attributes.current_mw == 20000 + known_until  # type: ignore[attr-defined]


def test_demand_spring_forward_rows_are_dropped() -> None:
    raw = demand_file(NEW, full_day(minutes(4), dst="spring"))
    [c] = caiso_demand.parse(raw, pt(2026, 3, 8, 4, 2))
    a = c.attributes
    assert a.current_mw == 20240 and a.interval_end == pt(2026, 3, 8, 4, 0)  # type: ignore[attr-defined]
    assert c.window.end - c.window.start == (pt(2026, 3, 9) - pt(2026, 3, 8))  # type: ignore[operator]


def test_demand_fall_back_hour_is_the_first_occurrence() -> None:
    raw = demand_file(NEW, full_day(minutes(1, 30)))
    [c] = caiso_demand.parse(raw, datetime(2026, 11, 1, 8, 40, tzinfo=UTC))  # 01:40 PDT
    assert c.attributes.interval_end == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # type: ignore[attr-defined]


def test_demand_repeated_label_keeps_the_first_row() -> None:
    rows = full_day(minutes(0, 5))
    rows.insert(2, "00:05,9,9,9,")
    [c] = caiso_demand.parse(demand_file(NEW, rows), pt(2026, 3, 11, 0, 7))
    assert c.attributes.current_mw == 20005  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw", [b"", b"Time,Current demand\n", b"Foo,Bar\n1,2\n",
                                 b"Time,Current demand\n7pm,30000\n",
                                 b"Time,Current demand\n00:05,n/a\n"])
def test_demand_malformed(raw: bytes) -> None:
    with pytest.raises(ParseError):
        caiso_demand.parse(raw, pt(2026, 3, 11, 12))


def test_demand_observed_first_rows_parse() -> None:
    """The header and first row recorded live in observed/ (2026-07-27), ahead of a day of
    forecasts (the recorded body, 7,005 bytes, is a whole day's rows): that 00:00 row ends the
    interval 23:55-00:00 of 07/26, so the new day has no reading of its own yet."""
    rows = full_day(0)
    rows[0] = "00:00,30243,29312,29138,"
    [c] = caiso_demand.parse(demand_file(NEW, rows), pt(2026, 7, 27, 0, 3))
    a = c.attributes
    assert isinstance(a, DemandAttributes)
    assert a.operating_day == date(2026, 7, 27) and c.status is Status.ACTIVE
    assert (a.current_mw, a.interval_end, a.todays_peak_mw) == (None, None, None)
    assert a.day_ahead_peak_mw == 30024


# -- freshness: a file that stopped moving is not current --------------------------------------

@pytest.mark.parametrize(("fetched", "current"), [
    (pt(2026, 3, 11, 12, 1), 20000 + minutes(12)),  # the 12:00 reading, a minute after
    (pt(2026, 3, 11, 12, 15), 20000 + minutes(12)),  # three intervals on: late, still current
    (pt(2026, 3, 11, 12, 16), None),
    (pt(2026, 3, 11, 18, 1), None),  # hours old
])
def test_demand_reading_older_than_three_intervals_is_stale(fetched: datetime,
                                                           current: int | None) -> None:
    raw = demand_file(NEW, full_day(minutes(12)))
    if current is None:
        with pytest.raises(ParseError) as info:
            caiso_demand.parse(raw, fetched)
        assert info.value.reason == "stale" and "12:00" in str(info.value)
    else:
        [c] = caiso_demand.parse(raw, fetched)
        assert c.attributes.current_mw == current  # type: ignore[attr-defined]


def test_demand_new_day_without_a_reading_turns_stale() -> None:
    raw = demand_file(NEW, full_day(0))
    [c] = caiso_demand.parse(raw, pt(2026, 3, 11, 0, 3))
    assert c.attributes.current_mw is None  # type: ignore[attr-defined]
    with pytest.raises(ParseError, match="no reading since the day's start"):
        caiso_demand.parse(raw, pt(2026, 3, 11, 0, 20))


def test_demand_history_day_is_not_held_to_the_fetch_time() -> None:
    raw = demand_file(NEW, full_day(minutes(24)))
    [c] = caiso_demand.parse(raw, pt(2026, 5, 1, 9), day=date(2026, 3, 11))
    assert c.attributes.current_mw == 20000 + minutes(24)  # type: ignore[attr-defined]


@pytest.mark.parametrize("field", ["slotDate", "CurrentSystemDemandTS"])
def test_stats_older_than_three_intervals_is_stale(field: str) -> None:
    fresh = {"slotDate": "9/6/2022 17:25", "CurrentSystemDemandTS": "202209061725"}
    raw = stats(gridstatus=["Energy Emergency Alert (EEA) 3"], CurrentSystemDemand="51,812",
                **fresh)
    [c] = caiso_stats.parse(raw, pt(2022, 9, 6, 17, 40))
    assert c.attributes.current_demand_mw == 51812  # type: ignore[attr-defined]
    stale = {**fresh, field: {"slotDate": "9/6/2022 15:25",
                              "CurrentSystemDemandTS": "202209061525"}[field]}
    raw = stats(gridstatus=["Energy Emergency Alert (EEA) 3"], CurrentSystemDemand="51,812",
                **stale)
    with pytest.raises(ParseError) as info:
        caiso_stats.parse(raw, pt(2022, 9, 6, 17, 40))
    assert info.value.reason == "stale" and field in str(info.value)
