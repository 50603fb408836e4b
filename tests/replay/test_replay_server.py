"""The replay server serves each source path as it stood at the injected clock's time."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from capmon.replay import ReplayServer, create_replay_app, load_timeline
from monitor.clock import ManualClock
from monitor.config import SourcesSettings
from monitor.errors import ConfigError

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2022-09-heatwave"
PT = ZoneInfo("America/Los_Angeles")
FLEX = "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"
SCE = "/m.dr.website/resteasy/services/getEventStore"
Client = TestClient[Any, Any]


def pt(month: int, day: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(2022, month, day, hh, mm, ss, tzinfo=PT)


@pytest.fixture
def replay_clock() -> ManualClock:
    return ManualClock(pt(8, 29, 0))


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[Client]],
                 replay_clock: ManualClock) -> Client:
    return await aiohttp_client(create_replay_app(SCENARIO, replay_clock,
                                                  oasis_min_interval_s=5))


async def get_json(client: Client, path: str) -> Any:
    resp = await client.get(path, params={"_": "1662500000"})  # CAISO's cache-buster is ignored
    assert resp.status == 200, await resp.text()
    return json.loads(await resp.read())


async def test_flex_alert_api_follows_the_alerts(client: Client, replay_clock: ManualClock
                                                 ) -> None:
    replay_clock.set(pt(8, 29, 10))
    quiet = await get_json(client, FLEX)
    assert quiet["IsFlexAlertActive"] is False and quiet["Active"] == quiet["Future"] == []
    replay_clock.set(pt(8, 30, 12, 30))
    announced = await get_json(client, FLEX)
    assert announced["IsFlexAlertActive"] is False
    assert [(f["StartDate"], f["EndDate"]) for f in announced["Future"]] == [
        ("08-31-2022 16:00", "08-31-2022 21:00")]
    replay_clock.set(pt(9, 8, 15, 30))
    live = await get_json(client, FLEX)
    assert live["IsFlexAlertActive"] is True
    assert [(f["StartDate"], f["EndDate"]) for f in live["Active"]] == [
        ("09-08-2022 15:00", "09-08-2022 22:00")]
    assert live["UpdatedOn"] == "09-08-2022 15:00:00"
    replay_clock.set(pt(9, 9, 22))
    assert (await get_json(client, FLEX))["IsFlexAlertActive"] is False


async def test_stats_txt_on_the_evening_of_september_6(client: Client,
                                                       replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 5, 23, 56))
    sep5 = await get_json(client, "/outlook/current/stats.txt")
    assert sep5["TodaysPeakDemand"] == 49020 and sep5["histDemand"] == "50,270 MW"
    assert sep5["gridstatus"] == ["Normal"]
    replay_clock.set(pt(9, 6, 17, 26, 30))  # the 17:25 slot: EEA 3 issued at 17:26, not yet shown
    before = await get_json(client, "/outlook/current/stats.txt")
    assert before["slotDate"] == "9/6/2022 17:25"
    assert "EEA 3" not in before["gridstatus"] and "EEA 2" in before["gridstatus"]
    assert before["TodaysPeakDemand"] == 52061 and before["TodaysPeakDemandTS"] == "202209061657"
    assert before["histDemand"] == "52,061 MW"
    replay_clock.set(pt(9, 6, 17, 31))
    during = await get_json(client, "/outlook/current/stats.txt")
    assert "EEA 3" in during["gridstatus"]
    assert during["Current_reserve"] < during["Required_reserve"]
    replay_clock.set(pt(9, 6, 20, 31))
    after = await get_json(client, "/outlook/current/stats.txt")
    assert "EEA 3" not in after["gridstatus"] and after["Current_reserve"] > after[
        "Required_reserve"]


async def test_stats_just_after_midnight_uses_the_last_slot(client: Client,
                                                            replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 7, 0, 0, 30))  # 00:00 slot publishes at 00:01
    body = await get_json(client, "/outlook/current/stats.txt")
    assert body["slotDate"] == "9/6/2022 23:55"


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_demand_csv_reveals_the_day_as_it_goes(client: Client,
                                                     replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 17, 2))
    resp = await client.get("/outlook/current/demand.csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = parse_csv(await resp.text())
    assert len(rows) == 289 and rows[0]["Time"] == "00:00" and rows[-1]["Time"] == "00:00"
    by_time = {r["Time"]: r for r in rows[:-1]}
    assert by_time["16:55"]["Current demand"] == "52061"
    assert by_time["17:00"]["Current demand"] != "" and by_time["17:05"]["Current demand"] == ""
    assert by_time["18:00"]["Hour ahead forecast"] != ""
    assert by_time["18:05"]["Hour ahead forecast"] == ""
    assert all(r["Day ahead forecast"] for r in rows)
    known = [int(r["Current demand"]) for r in rows if r["Current demand"]]
    assert max(known) == 52061


async def test_demand_history(client: Client, replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 12))
    sep5 = parse_csv(await (await client.get("/outlook/history/20220905/demand.csv")).text())
    assert max(int(r["Current demand"]) for r in sep5[:-1]) == 49020
    assert (await client.get("/outlook/history/20220907/demand.csv")).status == 404
    assert (await client.get("/outlook/history/2022-09-05/demand.csv")).status == 404


def unzip(body: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        (name,) = z.namelist()
        return name, z.read(name)


async def oasis(client: Client, market: str, start: str, end: str,
                **extra: str) -> aiohttp.ClientResponse:
    params = {"resultformat": "6", "queryname": "SLD_FCST", "version": "1",
              "market_run_id": market, "startdatetime": start, "enddatetime": end, **extra}
    return await client.get("/oasisapi/SingleZip", params=params)


async def test_oasis_dam_published_at_0910(client: Client, replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 9, 0))
    early = await oasis(client, "DAM", "20220907T07:00-0000", "20220908T07:00-0000")
    assert early.status == 200 and early.content_type == "application/x-zip-compressed"
    assert early.headers["Content-Disposition"] == "inline; filename=INVALID_REQUEST.xml.zip"
    name, xml = unzip(await early.read())
    assert name == "INVALID_REQUEST.xml" and b"<m:ERR_CODE>1000</m:ERR_CODE>" in xml
    replay_clock.set(pt(9, 6, 9, 15))
    resp = await oasis(client, "DAM", "20220907T07:00-0000", "20220908T07:00-0000")
    disposition = resp.headers["Content-Disposition"]
    assert disposition == ("inline; filename=20220907_20220908_SLD_FCST_DAM_"
                           "20220906_09_15_00_v1.zip")
    name, data = unzip(await resp.read())
    assert name == "20220907_20220908_SLD_FCST_DAM_20220906_09_15_00_v1.csv"
    rows = parse_csv(data.decode())
    assert {r["OPR_DT"] for r in rows} == {"2022-09-07"} and len(rows) == 24 * 6
    assert rows[0].keys() >= {"INTERVALSTARTTIME_GMT", "TAC_AREA_NAME", "MW", "GROUP"}
    for he in range(1, 25):
        hour = {r["TAC_AREA_NAME"]: float(r["MW"]) for r in rows if r["OPR_HR"] == str(he)}
        parts = sum(v for k, v in hour.items() if k != "CA ISO-TAC")
        assert abs(hour["CA ISO-TAC"] - parts) < 0.05
    peak = max(float(r["MW"]) for r in rows if r["TAC_AREA_NAME"] == "CA ISO-TAC")
    assert 50_500 < peak < 51_300  # CAISO projected 51,180 MW for 9/7


async def test_oasis_errors_and_throttle(client: Client, replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 10))
    cases = [("DAM", "20220801T07:00-0000", "20220910T07:00-0000", {}, "1004"),
             ("DAM", "2022-09-07", "20220908T07:00-0000", {}, "1002"),
             ("DAM", "20220907T07:00-0000", "20220908T07:00-0000", {"queryname": "PRC_LMP"},
              "1001")]
    for market, start, end, extra, code in cases:
        replay_clock.advance(5)
        _, xml = unzip(await (await oasis(client, market, start, end, **extra)).read())
        assert f"<m:ERR_CODE>{code}</m:ERR_CODE>".encode() in xml, code
    throttled = await oasis(client, "DAM", "20220907T07:00-0000", "20220908T07:00-0000")
    assert throttled.status == 429 and "retry your request after 5 seconds" in (
        await throttled.text())
    replay_clock.advance(5)
    ok = await oasis(client, "2DA", "20220908T07:00-0000", "20220909T07:00-0000")
    assert unzip(await ok.read())[0].startswith("20220908_20220909_SLD_FCST_2DA_")


async def test_sce_dr_events_through_september_6(client: Client,
                                                 replay_clock: ManualClock) -> None:
    def events(store: Any, category: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = store["eventStore"]["events"]["map"].get(category, [])
        return found

    replay_clock.set(pt(9, 6, 15, 45))
    scheduled = await get_json(client, SCE)
    bip = events(scheduled, "BIP_COMMERCIAL_SCHEDULED")
    assert [(e["product"], e["startTime"], e["endTime"]) for e in bip] == [
        ("BIP-30", "04:00PM", "TBD")]
    assert bip[0]["active"] is False and bip[0]["endDateTime"] is None
    replay_clock.set(pt(9, 6, 16, 30))
    active = await get_json(client, SCE)
    assert events(active, "BIP_COMMERCIAL_ACTIVE")[0]["uuid"] == bip[0]["uuid"]
    cpp_tomorrow = events(active, "SAI_RESIDENTIAL_SCHEDULED")
    assert [e["startDate"] for e in cpp_tomorrow] == ["09/07/2022"]
    replay_clock.set(pt(9, 6, 19, 50))
    known_end = events(await get_json(client, SCE), "BIP_COMMERCIAL_ACTIVE")[0]
    assert known_end["endTime"] == "08:00PM" and known_end["tbdFlag"] is False
    replay_clock.set(pt(9, 6, 20, 30))
    assert events(await get_json(client, SCE), "BIP_COMMERCIAL_ACTIVE") == []
    updates = await get_json(client, "/m.dr.website/resteasy/services/getLastUpdateTime")
    # The list changed when the event left it at 20:00, and so did its time: a reader that
    # refetches only categories whose time moved sees the event go. The scheduled list's
    # time moved at 16:00, when the event left it for the active list.
    marks = updates["lastUpdateTime"]["item"]
    assert marks["BIP_COMMERCIAL_ACTIVE"] == int(pt(9, 6, 20, 0).timestamp() * 1000)
    assert marks["BIP_COMMERCIAL_SCHEDULED"] == int(pt(9, 6, 16, 0).timestamp() * 1000)


async def test_notice_mailbox_releases_each_email_at_its_issue_time(
        client: Client, replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 17, 25))
    listing = await get_json(client, "/replay/notices")
    names = [m["name"] for m in listing["messages"]]
    assert "20220906T1726_202202696.eml" not in names and len(names) == 24
    # The listing says when the next email arrives (what an IMAP IDLE push would signal).
    assert listing["next_at"] == pt(9, 6, 17, 26).isoformat()
    assert (await client.get("/replay/notices/20220906T1726_202202696.eml")).status == 404
    replay_clock.set(pt(9, 6, 17, 26))
    listing = await get_json(client, "/replay/notices")
    assert listing["messages"][-1]["name"] == "20220906T1726_202202696.eml"
    resp = await client.get("/replay/notices/20220906T1726_202202696.eml")
    assert resp.status == 200 and resp.content_type == "message/rfc822"
    msg = email.message_from_bytes(await resp.read(), policy=email.policy.default)
    assert msg["Subject"] == "CAISO EEA 3 NOTICE [202202696]"
    assert msg["Date"].datetime == pt(9, 6, 17, 26)
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert "effective 09/06/2022 17:17 through 09/06/2022 20:00." in body.get_content()


async def test_conditional_requests_and_unknown_paths(client: Client,
                                                      replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 1, 12))
    first = await client.get(FLEX)
    etag = first.headers["ETag"]
    again = await client.get(FLEX, headers={"If-None-Match": etag})
    assert again.status == 304
    replay_clock.set(pt(9, 1, 16, 1))  # the alert went active: a new body, a new ETag
    changed = await client.get(FLEX, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert (await client.get("/outlook/current/fuelsource.csv")).status == 404
    clock = await get_json(client, "/replay/clock")
    assert clock["scenario"] == "2022-09-heatwave" and clock["now"].startswith("2022-09-01T23")


async def test_replay_server_on_loopback_serves_the_configured_source_urls(
        replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 12))
    async with ReplayServer(SCENARIO, replay_clock) as server, aiohttp.ClientSession() as s:
        assert server.base_url.startswith("http://127.0.0.1:") and server.port > 0
        sources = SourcesSettings(**server.source_urls())
        for url in (sources.caiso_flex_url, f"{sources.caiso_outlook_url}/current/stats.txt",
                    f"{sources.caiso_outlook_url}/current/demand.csv",
                    f"{sources.sce_api_url}/getEventStore"):
            async with s.get(url) as resp:
                assert resp.status == 200, url


def test_timeline_with_a_missing_file_is_rejected(tmp_path: Path) -> None:
    timeline = json.loads((SCENARIO / "timeline.json").read_text())
    (tmp_path / "timeline.json").write_text(json.dumps(timeline))
    with pytest.raises(ConfigError, match="missing files"):
        load_timeline(tmp_path)
    (tmp_path / "timeline.json").write_text("{}")
    with pytest.raises(ConfigError, match="bad scenario timeline"):
        load_timeline(tmp_path)


async def test_seven_day_ra_outlook(client: Client, replay_clock: ManualClock) -> None:
    replay_clock.set(pt(9, 6, 12, 3))
    rows = parse_csv(await (await client.get("/outlook/current/rtm_forecast_7day.csv")).text())
    assert len(rows) == 8 * 288 + 1
    assert rows[0]["Time"] == "09/06/2022 00:00" and rows[-1]["Time"] == "09/14/2022 00:00"
    by_time = {r["Time"]: r for r in rows}
    # Time is the interval end: the 11:55-12:00 actual is known a minute after 12:00.
    assert by_time["09/06/2022 12:00"]["Demand"] != ""
    assert by_time["09/06/2022 12:05"]["Demand"] == ""
    assert all(r["Day-ahead demand forecast"] and r["Resource adequacy capacity forecast"]
               for r in rows)

    def margin(r: dict[str, str]) -> int:
        return (int(r["Resource adequacy capacity forecast"])
                - int(r["Day-ahead demand forecast"]) - int(r["Reserve requirement forecast"]))

    daily: dict[str, int] = {}
    for r in rows[1:]:
        day = r["Time"][:10]
        daily[day] = min(daily.get(day, 10**9), margin(r))
    assert daily["09/06/2022"] < 0 and daily["09/07/2022"] < 0  # the outlook's shortfall
    assert daily["09/12/2022"] > 2000  # the heat broke on 9/10
    history = parse_csv(await (await client.get(
        "/outlook/history/20220905/rtm_forecast_7day.csv")).text())
    assert all(r["Demand"] for r in history[:289])
