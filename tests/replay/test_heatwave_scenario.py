"""The 2022-09 heat-wave scenario agrees with the real record and rebuilds byte for byte."""

from __future__ import annotations

import csv
import email
import email.policy
import filecmp
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from capmon.replay import load_timeline

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2022-09-heatwave"
GENERATED = ("notices", "flexalert", "outlook", "oasis", "sce", "timeline.json")


def demand_rows(day: str) -> list[dict[str, str]]:
    with (SCENARIO / f"outlook/history/{day}/demand.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_build_is_reproducible(tmp_path: Path) -> None:
    copy = tmp_path / "scenario"
    copy.mkdir()
    shutil.copy(SCENARIO / "build.py", copy)
    shutil.copytree(SCENARIO / "source", copy / "source")
    run = subprocess.run([sys.executable, str(copy / "build.py")], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    for name in GENERATED:
        a, b = SCENARIO / name, copy / name
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), name
            continue
        cmp = filecmp.dircmp(a, b)
        pending = [cmp]
        while pending:
            c = pending.pop()
            assert not (c.left_only or c.right_only), (name, c.left_only, c.right_only)
            _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files,
                                                   shallow=False)
            assert not mismatch and not errors, (name, mismatch)
            pending += c.subdirs.values()


def test_timeline_loads_and_covers_the_heat_wave() -> None:
    tl = load_timeline(SCENARIO)
    assert tl.start.isoformat() == "2022-08-29T00:00:00-07:00"
    assert tl.end.isoformat() == "2022-09-10T00:00:00-07:00"
    assert set(tl.paths) >= {"/outlook/current/stats.txt", "/outlook/current/demand.csv",
                             "/oasisapi/SingleZip", "/replay/notices",
                             "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents",
                             "/m.dr.website/resteasy/services/getEventStore"}


def test_demand_matches_the_real_peaks() -> None:
    sep6 = demand_rows("20220906")[:-1]
    peak = max(sep6, key=lambda r: int(r["Current demand"]))
    assert (peak["Time"], peak["Current demand"]) == ("16:55", "52061")  # 16:57 instantaneous
    assert max(int(r["Current demand"]) for r in demand_rows("20220905")[:-1]) == 49020
    # The wireless emergency alert at ~17:40: more than 2,000 MW off within minutes.
    by_time = {r["Time"]: int(r["Current demand"]) for r in sep6}
    assert by_time["17:40"] - by_time["17:55"] > 2000
    for day in ("20220829", "20220901", "20220907", "20220909"):
        rows = demand_rows(day)
        assert len(rows) == 289 and rows[-1]["Time"] == "00:00"
        assert max(int(r["Current demand"]) for r in rows[:-1]) < 52061  # 9/6 is the record


def test_every_emailed_notice_is_the_real_text_at_its_issue_time() -> None:
    source = json.loads((SCENARIO / "source/heatwave_2022-08-31_to_09-09_timeline.derived.json")
                        .read_text())["notices"]
    emailed = [n for n in source if n["type"] != "FLEX_ALERT"]
    files = sorted((SCENARIO / "notices").glob("*.eml"))
    assert len(files) == len(emailed) == 35
    report = " ".join((SCENARIO / "source/grid_emergencies_2022_section_E.txt").read_text()
                      .split())
    for n in emailed:
        issued = datetime.fromisoformat(n["issued_at"])
        name = f"{issued:%Y%m%dT%H%M}_{n['notice_no'] or n['type'].lower()}.eml"
        msg = email.message_from_bytes((SCENARIO / "notices" / name).read_bytes(),
                                       policy=email.policy.default)
        assert msg["Date"].datetime == issued, name
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        start = datetime.fromisoformat(n["effective_start"])
        assert f"{start:%m/%d/%Y %H:%M}" in text, name
        assert f"Notice issued at: {issued:%m/%d/%Y %H:%M}" in text, name
        if n["notice_no"]:
            assert f"[{n['notice_no']}]" in msg["Subject"]
        # The body is the report's own text, word for word.
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert " ".join(" ".join(lines[1:]).split()) in report, name
    superseding = (SCENARIO / "notices/20220907T2021_eea2.eml").read_text()
    assert "This notice supersedes notice 202202705" in superseding


def test_flex_snapshots_cover_every_real_flex_alert() -> None:
    tl = json.loads((SCENARIO / "timeline.json").read_text())
    files = tl["paths"]["/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents"][
        "files"]
    windows = set()
    for f in files:
        body = json.loads((SCENARIO / f["file"]).read_text())
        windows |= {(a["StartDate"], a["EndDate"]) for a in body["Active"]}
        assert body["IsFlexAlertActive"] == bool(body["Active"])
    assert len(windows) == 10
    assert ("09-05-2022 16:00", "09-05-2022 22:00") in windows
    assert ("09-08-2022 15:00", "09-08-2022 22:00") in windows


def _check_subscription(sub: dict[str, Any]) -> None:
    assert set(sub) <= {"name", "match", "transitions", "repeat_interval", "channel",
                        "quiet_hours", "status"}
    kinds = {"caiso.eea", "caiso.flex_alert", "caiso.rmo", "caiso.transmission_emergency",
             "caiso.legacy", "caiso.status", "caiso.demand", "caiso.peak_forecast",
             "caiso.ra_outlook", "sce.dr_event", "source.health"}
    severities = ["info", "advisory", "watch", "warning", "emergency", "critical"]
    match = sub["match"]
    assert set(match["kinds"]) <= kinds and match["min_severity"] in severities
    for t in match.get("thresholds", []):
        assert t["kind"] in kinds and t["day"] in ("today", "tomorrow")
        assert t["clear_below"] < t["above"]  # hysteresis
    assert set(sub["transitions"]) <= {"issued", "updated", "started", "ended", "cancelled",
                                       "reminder"}
    channel = sub["channel"]
    if channel["type"] in ("sms", "voice"):
        assert re.fullmatch(r"\+1\d{3}55501\d\d", channel["phone"])  # fictional numbers
    elif channel["type"] == "email":
        assert channel["address"].endswith(".example")
    else:
        assert channel["type"] == "webhook" and channel["url"].startswith("https://")
    if "quiet_hours" in sub:
        assert sub["quiet_hours"]["bypass_severity"] in severities
    assert sub["status"] == "active"


def test_subscriptions_are_realistic_and_follow_the_schema() -> None:
    doc = yaml.safe_load((SCENARIO / "subscriptions.yaml").read_text())
    names = [t["name"] for t in doc["tenants"]]
    assert names == ["Clean Power Alliance of Southern California", "Desert Community Energy"]
    for tenant in doc["tenants"]:
        channels = {s["channel"]["type"] for s in tenant["subscriptions"]}
        # DCE's escalation ladder calls its schedulers.
        assert channels == {"sms", "email", "webhook"} | (
            {"voice"} if tenant["slug"] == "dce" else set())
        for sub in tenant["subscriptions"]:
            _check_subscription(sub)
    # The phones of the story are fictional numbers too.
    assert doc["phones"] and all(re.fullmatch(r"\+1\d{3}55501\d\d", n) for n in doc["phones"])


def test_readme_marks_every_file_real_or_constructed() -> None:
    readme = (SCENARIO / "README.md").read_text()
    for entry in ("source/grid_emergencies_2022_section_E.txt",
                  "source/heatwave_2022-08-31_to_09-09_timeline.derived.json", "notices/",
                  "flexalert/", "outlook/history/YYYYMMDD/demand.csv",
                  "outlook/history/YYYYMMDD/rtm_forecast_7day.csv", "outlook/stats/", "oasis/",
                  "sce/", "timeline.json", "subscriptions.yaml", "build.py"):
        row = next((ln for ln in readme.splitlines() if f"`{entry}" in ln), None)
        assert row is not None, entry
        assert re.search(r"\b(real|derived from real|constructed|generated)\b", row), entry
