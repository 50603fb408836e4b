"""SCE's real event history (1998-2011) parses completely and imports idempotently."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from capmon.cli.sce_history import import_history
from monitor.attributes import DrEventAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Severity, Status
from monitor.store import Store
from monitor.store import conditions as stored
from producers.sce_history import history_conditions, parse_history
from producers.sce_values import PACIFIC

ROOT = Path(__file__).resolve().parents[2]
HISTORY = ROOT / "tests" / "fixtures" / "sce" / "history"
API_BIP_SDP = HISTORY / "api_bip_sdp_history_1998-2011.csv"
CBP_DBP_CPP = HISTORY / "cbp_dbp_cpp_drc_history_2008-2010.derived.csv"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=PACIFIC)


def attrs(c: Condition) -> DrEventAttributes:
    assert isinstance(c.attributes, DrEventAttributes)
    return c.attributes


def by_start(cs: list[Condition], local: str) -> list[Condition]:
    at = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=PACIFIC)
    return [c for c in cs if c.window.start == at]


def test_all_373_events_import_as_ended_with_unique_ids() -> None:
    raw = API_BIP_SDP.read_bytes()
    # 374 CRLF records in 452 lines: 72 comments carry bare line feeds.
    assert raw.count(b"\r\n") == 374 and raw.count(b"\n") == 452
    cs = history_conditions(raw)
    assert len(cs) == 373
    assert len({c.id for c in cs}) == 373
    assert {c.status for c in cs} == {Status.ENDED}
    assert {attrs(c).channel for c in cs} == {"history"}


def test_every_row_has_its_local_time_whatever_its_style() -> None:
    cs = history_conditions(API_BIP_SDP.read_bytes())
    with API_BIP_SDP.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(cs)
    for row, c in zip(rows, cs, strict=True):
        if not row["Event Start Time"]:
            continue
        h, m, s = (int(x) for x in row["Event Start Time"].split(":"))
        y, mo, d = (int(x) for x in row["Event Start Date"].split("-"))
        assert c.window.start == datetime(y, mo, d, h, m, s, tzinfo=PACIFIC), row
        assert attrs(c).program == {"API": "AP-I"}.get(row["Program"], row["Program"])
        assert attrs(c).product == row["Product"]


def test_unpadded_and_padded_times_and_daylight_offsets() -> None:
    cs = history_conditions(API_BIP_SDP.read_bytes())
    # 2009-09-30: the erroneous 1-minute activation, written `8:53:00`.
    one_minute = by_start(cs, "2009-09-30 08:53")
    assert {attrs(c).product for c in one_minute} == {"APS", "APS-E"}
    assert all(c.window.end.isoformat() == "2009-09-30T08:54:00-07:00"  # type: ignore[union-attr]
               for c in one_minute)
    # 2008-11-07, after daylight time ended: -08:00.
    (nov,) = by_start(cs, "2008-11-07 11:13")
    assert nov.window.start.isoformat() == "2008-11-07T11:13:00-08:00"  # type: ignore[union-attr]
    assert nov.severity is Severity.EMERGENCY
    # 2010-09-27: AP-I to 16:31, SDP Base to 17:31 and Enhanced to 18:13.
    ends = {attrs(c).product: c.window.end.strftime("%H:%M")  # type: ignore[union-attr]
            for c in by_start(cs, "2010-09-27 15:16")}
    assert ends == {"API": "16:31", "APS": "17:31", "APS-E": "18:13"}


def test_blocks_substations_districts_and_comments() -> None:
    cs = history_conditions(API_BIP_SDP.read_bytes())
    bips = by_start(cs, "2011-09-21 14:00")
    assert sorted((attrs(c).product, attrs(c).blocks) for c in bips) == [
        ("BIP-15", ("T",)), ("BIP-30", ("P",)), ("BIP-30", ("Q",)), ("BIP-30", ("R",))]
    (pechanga,) = [c for c in by_start(cs, "2010-07-28 13:00") if attrs(c).locations == ("8347",)]
    assert attrs(pechanga).location_type == "SUBSTATION" and "SCEC" in pechanga.regions
    assert attrs(pechanga).test_event  # "for PDR SDP test event"
    assert attrs(cs[0]).comments.startswith("1547  PDCI")  # type: ignore[union-attr]
    multi_line = [c for c in cs if "\n" in (attrs(c).comments or "")]
    assert len(multi_line) == 72
    assert attrs(multi_line[0]).comments.startswith(  # type: ignore[union-attr]
        "District 36 (Antelope valley)")


def test_event_without_times_keeps_its_day() -> None:
    cs = history_conditions(API_BIP_SDP.read_bytes())
    (undated,) = [c for c in cs if c.window.start is None]
    assert attrs(undated).event_date == date(2000, 9, 18)
    assert undated.window.end is None and undated.status is Status.ENDED


def test_hour_ending_log_of_cbp_dbp_cpp_drc() -> None:
    cs = history_conditions(CBP_DBP_CPP.read_bytes())
    assert len(cs) == 294 and len({c.id for c in cs}) == 294
    # 7/7/2008 CBP 1-4 Day Ahead, HE13-17: 12:00 to 17:00.
    (cbp,) = [c for c in by_start(cs, "2008-07-07 12:00")
              if attrs(c).product == "CBP 1-4 Day Ahead"]
    assert cbp.window.end.strftime("%H:%M") == "17:00"  # type: ignore[union-attr]
    assert attrs(cbp).notice == "day_ahead" and attrs(cbp).trigger == "Event Scheduled-Heat Rate"
    # HE16 to HE16 is the single hour 15:00-16:00.
    (one_hour,) = [c for c in by_start(cs, "2010-10-14 15:00")]
    assert one_hour.window.end.strftime("%H:%M") == "16:00"  # type: ignore[union-attr]
    # "cancelled per mngt" is the only cancellation, and it is only in the comment.
    cancelled = [c for c in cs if c.status is Status.CANCELLED]
    assert [attrs(c).product for c in cancelled] == ["CPI Day Of"]
    # "Measurement and Evaluation", "Test - 12-Noon...", "test event", "Test Event".
    tests = [c for c in cs if attrs(c).test_event]
    assert len(tests) >= 15
    assert all(any(w in (attrs(c).comments or "").lower() for w in ("test", "measurement"))
               for c in tests)
    assert {attrs(c).program for c in cs} == {"CBP", "DBP", "CPP", "DRC"}


def test_site_export_layout() -> None:
    raw = (b"Product,Start Date,End Date,Start Time,End Time,Block\r\n"
           b"BIP-30,09/21/2011,09/21/2011,02:00PM,04:00PM,P\r\n"
           b"CBP 1-4 DA,09/27/2010,09/27/2010,02:00PM,06:00PM,All\r\n")
    a, b = parse_history(raw)
    assert (a.program, a.blocks, a.severity) == ("BIP", ("P",), Severity.EMERGENCY)
    assert (b.program, b.location_type, b.notice) == ("CBP", "ALL", "day_ahead")


@pytest.mark.parametrize("raw", [
    b"", b"just,a,header\r\n",
    b"Program,Product,Dipsatch Type,Dispatch Location,Event Start Date,Event Start Time,"
    b"Event End Date,Event End Time,Comments\r\nSDP,APS,District,All,2010-13-01,9:00:00,"
    b"2010-13-01,10:00:00,\r\n",
    b"Program,Product,Dipsatch Type,Dispatch Location,Event Start Date,Event Start Time,"
    b"Event End Date,Event End Time,Comments\r\nSDP,APS,District,All,2010-07-01,19:00:00,"
    b"2010-07-01,10:00:00,\r\n",
    b"date,program,program_option,schedule,trigger_status,start_he,end_he,comments\r\n"
    b"7/7/2008,CBP,CBP 1-4 Day Ahead,Day Ahead,Event Scheduled,xx,17,\r\n",
    b'date,program,program_option,schedule,trigger_status,start_he,end_he,comments\r\n'
    b'7/7/2008,CBP,"unterminated\r\n',
])
def test_bad_files_are_rejected_whole(raw: bytes) -> None:
    with pytest.raises(ParseError):
        history_conditions(raw)


async def test_import_twice_changes_nothing(store: Store) -> None:
    raw = API_BIP_SDP.read_bytes()
    assert await import_history(store, raw, NOW) == (373, 0, 0)
    async with store.connect() as conn:
        before = await stored.counts_by_kind_status(conn)
        one = (await stored.list_conditions(conn, limit=1))[0]
    assert await import_history(store, raw, NOW) == (0, 0, 373)
    async with store.connect() as conn:
        assert await stored.counts_by_kind_status(conn) == before == {
            ("sce.dr_event", "ended"): 373}
        assert len(await stored.history(conn, one.id)) == 1
        assert await stored.get(conn, one.id) == one


def test_capmon_sce_history_import(tmp_path: Path) -> None:
    env = {**os.environ, "CAPMON_STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"}

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "capmon.cli", "sce-history", "import",
                               str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    first = run(CBP_DBP_CPP)
    assert first.returncode == 0, first.stderr
    assert "294 new" in first.stdout
    again = run(CBP_DBP_CPP)
    assert "0 new, 0 updated, 294 unchanged" in again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"nonsense\r\n1,2\r\n")
    out = run(bad)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
