"""Build the 2022-09 heat-wave replay scenario from its sources (run from the repo root).

    python scenarios/2022-09-heatwave/build.py

Inputs (source/): CAISO's notice texts for 2022-08-31..09-09, extracted from the Grid
Emergencies History Report, and the structured timeline of those notices. Outputs: the .eml
notices (real text), Flex Alert API, stats.txt, demand.csv, OASIS SLD_FCST and SCE DR event
snapshots (constructed to agree with the real record: README.md says which is which), and
timeline.json, which tells the replay server (capmon/replay/) which file each URL path serves
from which scenario time. Deterministic: running it twice gives identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
PT = ZoneInfo("America/Los_Angeles")
START = datetime(2022, 8, 29, 0, 0, tzinfo=PT)
END = datetime(2022, 9, 10, 0, 0, tzinfo=PT)
DAYS = [date(2022, 8, 29) + timedelta(days=i) for i in range(12)]  # 8/29 .. 9/9
STEP = timedelta(minutes=5)

# Daily peaks (MW). 9/5 and 9/6 are the real record; the others are constructed estimates.
PEAKS = {
    date(2022, 8, 29): 41_240, date(2022, 8, 30): 43_180, date(2022, 8, 31): 46_160,
    date(2022, 9, 1): 47_230, date(2022, 9, 2): 46_920, date(2022, 9, 3): 45_040,
    date(2022, 9, 4): 46_380, date(2022, 9, 5): 49_020, date(2022, 9, 6): 52_061,
    date(2022, 9, 7): 50_510, date(2022, 9, 8): 48_960, date(2022, 9, 9): 45_810,
    date(2022, 9, 10): 42_300,
}
# Peak time (hours, Pacific): 9/6 16:57 is real (row 16:55); the others are constructed.
PEAK_AT = {d: 17.25 for d in PEAKS} | {date(2022, 9, 5): 17.0, date(2022, 9, 6): 16.0 + 55 / 60}
# Day-ahead forecast peaks: 9/6 51,276 and 9/7 51,180 are the projections CAISO gave; the
# others are constructed (a forecast a little off the actual).
DA_PEAKS = {d: round(p * (1.012 if i % 2 else 0.991)) for i, (d, p) in enumerate(PEAKS.items())}
DA_PEAKS |= {date(2022, 9, 6): 51_276, date(2022, 9, 7): 51_180}
# TAC areas that add up to CA ISO-TAC (shares constructed, near the real split).
TAC_SHARES = {"PGE-TAC": 0.425, "SCE-TAC": 0.455, "SDGE-TAC": 0.105, "VEA-TAC": 0.004,
              "MWD-TAC": 0.011}
HIST_RECORD = (50_270, "07/24/2006")  # the all-time peak before 9/6 16:57


def noise(*key: object, scale: float) -> float:
    """Deterministic noise in [-scale, scale] (no random state: builds are reproducible)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return (int.from_bytes(digest[:4], "big") / 2**32 * 2 - 1) * scale


def shape(hour: float, peak_at: float) -> float:
    """Fraction of the daily peak: a September heat-wave load curve, smooth between anchors."""
    anchors = [(0.0, 0.72), (4.5, 0.58), (8.0, 0.64), (12.0, 0.81), (15.0, 0.94),
               (peak_at, 1.0), (19.0, 0.955), (21.0, 0.865), (24.0, 0.74)]
    for (h0, f0), (h1, f1) in itertools.pairwise(anchors):
        if h0 <= hour <= h1:
            w = (1 - math.cos(math.pi * (hour - h0) / (h1 - h0))) / 2
            return f0 + (f1 - f0) * w
    return anchors[-1][1]


def scale(peaks: dict[date, int], day: date, hour: float) -> float:
    """The day's peak, blended from the previous day's over the small hours (no midnight jump)."""
    prev = peaks.get(day - timedelta(days=1), peaks[day])
    w = min(1.0, hour / 4)
    return prev * (1 - w) + peaks[day] * w


def actual_mw(day: date, slot: datetime) -> int:
    hour = slot.hour + slot.minute / 60
    value = scale(PEAKS, day, hour) * shape(hour, PEAK_AT[day])
    if abs(hour - PEAK_AT[day]) < 1e-6:
        return PEAKS[day]
    value = min(value + noise("actual", slot, scale=90), PEAKS[day] - 25)
    if day == date(2022, 9, 6) and hour >= 17 + 40 / 60:
        # ~17:40 the state's wireless emergency alert: demand fell >2,000 MW within minutes.
        ramp = min(1.0, (hour - (17 + 40 / 60)) * 6)
        drop = ramp * 2_350 * max(0.0, min(1.0, 1 - (hour - 19) / 3))
        value -= drop
    return round(value)


def da_mw(day: date, slot: datetime) -> int:
    hour = slot.hour + slot.minute / 60
    return round(scale(DA_PEAKS, day, hour) * shape(hour, 17.0))


def slots(day: date) -> list[datetime]:
    first = datetime(day.year, day.month, day.day, tzinfo=PT)
    return [first + i * STEP for i in range(288)]


# -- notices ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Notice:
    type: str
    notice_no: str | None
    issued_at: datetime | None
    start: datetime
    end: datetime
    region: str
    supersedes: str | None


LEVEL = {"RMO": "Restricted Maintenance Operations", "FLEX_ALERT": "Flex Alert",
         "EEA_WATCH": "EEA Watch", "EEA1": "EEA 1", "EEA2": "EEA 2", "EEA3": "EEA 3",
         "TRANSMISSION_EMERGENCY": "Transmission Emergency"}
_LADDER = ["RMO", "FLEX_ALERT", "TRANSMISSION_EMERGENCY", "EEA_WATCH", "EEA1", "EEA2", "EEA3"]


def load_notices() -> list[Notice]:
    raw = json.loads((HERE / "source/heatwave_2022-08-31_to_09-09_timeline.derived.json")
                     .read_text())
    out = []
    for n in raw["notices"]:
        out.append(Notice(n["type"], n["notice_no"],
                          datetime.fromisoformat(n["issued_at"]) if n["issued_at"] else None,
                          datetime.fromisoformat(n["effective_start"]),
                          datetime.fromisoformat(n["effective_end"]), n["region"],
                          n.get("supersedes_notice_no")))
    return out


def in_effect(notices: list[Notice], t: datetime) -> list[Notice]:
    """Notices in effect at t, as Today's Outlook lists them (issued and within the window).

    A superseded EEA 2 (202202705) ends when its successor is issued.
    """
    superseded = {n.supersedes: n.issued_at for n in notices if n.supersedes}
    live = []
    for n in notices:
        end = superseded.get(n.notice_no) or n.end if n.notice_no else n.end
        issued = n.issued_at or n.start
        if issued <= t and n.start <= t < min(end, n.end):
            live.append(n)
    return live


_PAGE_HEADER = re.compile(r"^(Page \d+|Grid Emergencies Record For 2022|"
                          r"Date Day Region Time Frame AWE Event Reason)\s*$")
_EFFECTIVE = re.compile(r"(?:effective|from)\s+(\d{2}/\d{2}/2022 \d{2}:\d{2})")


def notice_texts() -> dict[tuple[str, datetime], tuple[str | None, str]]:
    """(type, effective start) -> (title line or None, body) from the history report text."""
    lines = [ln.rstrip() for ln in (HERE / "source/grid_emergencies_2022_section_E.txt")
             .read_text().splitlines() if not _PAGE_HEADER.match(ln.strip())]
    found: dict[tuple[str, datetime], tuple[str | None, str]] = {}
    for i, line in enumerate(lines):
        if not line.startswith("The California ISO") or "Flex Alert" in line:
            continue
        title = lines[i - 1].strip() if re.search(r"NOTICE|Notice|Restricted Maintenance",
                                                   lines[i - 1]) else None
        body = []
        for ln in lines[i:]:
            body.append(ln)
            if ln.startswith("Notice issued at:"):
                break
        text = "\n".join(body)
        m = _EFFECTIVE.search(" ".join(text.split()))
        assert m, text[:200]
        start = datetime.strptime(m.group(1), "%m/%d/%Y %H:%M").replace(tzinfo=PT)
        kind = ("RMO" if "RESTRICTED MAINTENANCE" in text else
                "TRANSMISSION_EMERGENCY" if "TRANSMISSION EMERGENCY" in text else
                "EEA_WATCH" if "(EEA) Watch" in text else
                "EEA" + re.search(r"\(EEA\) (\d)", text).group(1))  # type: ignore[union-attr]
        found[(kind, start)] = (title, text)
    return found


def write_notices(notices: list[Notice]) -> list[dict[str, str]]:
    texts = notice_texts()
    out_dir = HERE / "notices"
    entries = []
    for n in sorted((n for n in notices if n.issued_at), key=lambda n: n.issued_at):  # type: ignore[arg-type,return-value]
        title, body = texts[(n.type, n.start)]
        assert n.issued_at is not None
        msg = EmailMessage()
        # Headers are constructed; the subject is the notice's own title where it has one.
        msg["From"] = "CAISO Notifications <ISO_Notifications@caiso.com>"
        msg["To"] = "capmon-notices@example.org"
        number = f" [{n.notice_no}]" if n.notice_no else ""
        msg["Subject"] = title or f"CAISO {LEVEL[n.type]} NOTICE{number}"
        msg["Date"] = format_datetime(n.issued_at)
        ident = hashlib.sha256(f"{n.type}{n.start}{n.issued_at}".encode()).hexdigest()[:24]
        msg["Message-ID"] = f"<{ident}.{n.start:%Y%m%d%H%M}@replay.capmon.invalid>"
        text = (title + "\n" if title else "") + body + "\n"
        msg.set_content(text, cte="7bit" if text.isascii() else "8bit")
        name = f"{n.issued_at:%Y%m%dT%H%M}_{n.notice_no or n.type.lower()}.eml"
        (out_dir / name).write_bytes(bytes(msg))
        entries.append({"from": n.issued_at.isoformat(), "file": f"notices/{name}"})
    return entries


# -- Today's Outlook: demand.csv and stats.txt --------------------------------------------------

def write_demand(day: date) -> str:
    rel = f"outlook/history/{day:%Y%m%d}/demand.csv"
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    # The header CAISO served until about 2022/23 (docs/sources-caiso.md section 1).
    w.writerow(["Time", "Day ahead forecast", "Hour ahead forecast", "Current demand"])
    for slot in slots(day):
        act = actual_mw(day, slot)
        w.writerow([f"{slot:%H:%M}", da_mw(day, slot),
                    round(act + noise("ha", slot, scale=250)), act])
    nxt = day + timedelta(days=1)
    first = slots(nxt)[0]
    w.writerow(["00:00", da_mw(nxt, first), round(actual_mw(nxt, first) + 120),
                actual_mw(nxt, first)])  # the trailing row that belongs to the next day
    path.write_text(buf.getvalue())
    return rel


def required_reserve(demand: int) -> int:
    return round(demand * 0.06 + 150)


def reserve_slack(live: list[Notice], slot: datetime, demand: int, peak: int) -> int:
    """Constructed: reserves above the requirement shrink as the notices escalate."""
    levels = {n.type for n in live}
    slack = 2_400 + (peak - demand) * 0.12
    if "EEA1" in levels:
        slack = 450
    if "EEA2" in levels:
        slack = 120
    if "EEA3" in levels:
        slack = -650 if slot < datetime(2022, 9, 6, 18, 5, tzinfo=PT) else 180
    return round(slack + noise("slack", slot, scale=60))


def stats_series(day: date, notices: list[Notice], forecasts: dict[tuple[str, date], float],
                 publish: dict[tuple[str, date], datetime]) -> str:
    rel = f"outlook/stats/{day:%Y%m%d}.jsonl"
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    peak_so_far, peak_at = 0, slots(day)[0]
    lines = []
    for slot in slots(day):
        demand = actual_mw(day, slot)
        if demand >= peak_so_far:
            peak_so_far, peak_at = demand, slot
        if day == date(2022, 9, 6) and slot.hour == 16 and slot.minute == 55:
            peak_at = slot.replace(minute=57)  # the real record: 52,061 MW at 16:57
        live = sorted(in_effect(notices, slot), key=lambda n: _LADDER.index(n.type))
        labels = list(dict.fromkeys(LEVEL[n.type] for n in live)) or ["Normal"]
        required = required_reserve(demand)
        reserve = required + reserve_slack(live, slot, demand, PEAKS[day])
        tomorrow = day + timedelta(days=1)
        market = "DAM" if publish[("DAM", tomorrow)] <= slot else "2DA"
        hist = (("52,061 MW", "09/06/2022") if slot >= datetime(2022, 9, 6, 16, 55, tzinfo=PT)
                else (f"{HIST_RECORD[0]:,} MW", HIST_RECORD[1]))
        body = {
            "slotDate": f"{slot.month}/{slot.day}/{slot.year} {slot:%H:%M}",
            "gridstatus": labels,
            "Current_reserve": reserve,
            "Required_reserve": required,
            "CurrentSystemDemand": demand,
            "CurrentSystemDemandTS": f"{slot:%Y%m%d%H%M}",
            "TodaysPeakDemand": peak_so_far,
            "TodaysPeakDemandTS": f"{peak_at:%Y%m%d%H%M}",
            "todayForecastPeakDemand": DA_PEAKS[day],
            "todayForecastPeakDemandTS": f"{day:%Y%m%d}1700",
            "tomorrowsForecastPeakDemand": round(forecasts[(market, tomorrow)], 2),
            "histDemand": hist[0],
            "histDemandDate": hist[1],
            "Available_capacity": demand + reserve,
            "Limitation": 2_850 + round(noise("lim", day, scale=400)),
        }
        # Published a minute after the 5-minute mark, as Today's Outlook is.
        lines.append(json.dumps({"at": (slot + timedelta(minutes=1)).isoformat(),
                                 "body": body}, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return rel


# -- Today's Outlook: 7-day resource adequacy outlook (rtm_forecast_7day.csv) -----------------

# Constructed peaks for the day before the scenario and the days after it that the 7-day
# outlook forecasts (the heat broke on 9/10).
LATER_PEAKS = {date(2022, 8, 28): 39_900, date(2022, 9, 11): 39_800, date(2022, 9, 12): 38_900,
               date(2022, 9, 13): 39_500, date(2022, 9, 14): 40_200, date(2022, 9, 15): 41_000,
               date(2022, 9, 16): 40_400, date(2022, 9, 17): 39_000}
FIRM_CAPACITY_MW = 47_500  # constructed: RA capacity besides solar, flat through the wave
RA_HEADER = ["Time", "Demand", "Net Demand", "Day-ahead demand forecast",
             "Day-ahead net demand forecast", "Resource adequacy capacity forecast",
             "Net resource adequacy capacity forecast", "Reserve requirement",
             "Reserve requirement forecast", "Resource adequacy credits"]


def solar_mw(t: datetime) -> float:
    hour = t.hour + t.minute / 60
    if not 6.5 < hour < 19.5:
        return 0.0
    return 13_200 * math.sin(math.pi * (hour - 6.5) / 13) ** 1.5


def forecast_mw(day: date, slot: datetime) -> int:
    if day in DA_PEAKS:
        return da_mw(day, slot)
    hour = slot.hour + slot.minute / 60
    return round(scale({**DA_PEAKS, **LATER_PEAKS}, day, hour) * shape(hour, 17.0))


def write_ra(publish_day: date) -> str:
    """One publish day's file: 8 days of 5-minute rows, `Time` the interval end (section 5)."""
    rel = f"outlook/history/{publish_day:%Y%m%d}/rtm_forecast_7day.csv"
    first = datetime(publish_day.year, publish_day.month, publish_day.day, tzinfo=PT)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RA_HEADER)
    for i in range(8 * 288 + 1):
        end = first + i * STEP
        slot = end - STEP  # the interval the row describes
        day = slot.date()
        fc = forecast_mw(day, slot)
        sun = solar_mw(slot)
        ra = round(FIRM_CAPACITY_MW + sun)
        actual = day == publish_day or (i == 0)
        demand = actual_mw(day, slot) if actual and day in PEAKS else None
        w.writerow([f"{end:%m/%d/%Y %H:%M}",
                    demand if demand is not None else "",
                    round(demand - sun) if demand is not None else "",
                    fc, round(fc - sun), ra, round(ra - sun),
                    required_reserve(demand) if demand is not None else "",
                    required_reserve(fc), 968])
    (HERE / rel).write_text(buf.getvalue())
    return rel


# -- OASIS SLD_FCST -------------------------------------------------------------------------------

# Presentation codes as the real January 2025 file has them (they change between files).
OASIS_CODES = {
    "DAM": ("1", "Demand Forecast Day Ahead", "SYS_FCST_DA_MW",
            {"CA ISO-TAC": ("2", 79), "MWD-TAC": ("2.3", 83), "PGE-TAC": ("2.1", 89),
             "SCE-TAC": ("2.2", 92), "SDGE-TAC": ("2.4", 94), "VEA-TAC": ("2.5", 99)}),
    "2DA": ("2", "Demand Forecast 2-Day Ahead", "SYS_FCST_2DA_MW",
            {"CA ISO-TAC": ("1", 11), "MWD-TAC": ("1.3", 15), "PGE-TAC": ("1.1", 21),
             "SCE-TAC": ("1.2", 24), "SDGE-TAC": ("1.4", 26), "VEA-TAC": ("1.5", 31)}),
    "7DA": ("0", "Demand Forecast 7-Day Ahead", "SYS_FCST_7DA_MW",
            {"CA ISO-TAC": ("0", 45), "MWD-TAC": ("0.3", 49), "PGE-TAC": ("0.1", 55),
             "SCE-TAC": ("0.2", 58), "SDGE-TAC": ("0.4", 60), "VEA-TAC": ("0.5", 65)}),
}
VINTAGE_BIAS = {"DAM": 1.0, "2DA": 0.985, "7DA": 0.955}
MARKET_LEAD = {"DAM": 1, "2DA": 2, "7DA": 7}
OASIS_HEADER = ["INTERVALSTARTTIME_GMT", "INTERVALENDTIME_GMT", "LOAD_TYPE", "OPR_DT", "OPR_HR",
                "OPR_INTERVAL", "MARKET_RUN_ID", "TAC_AREA_NAME", "LABEL", "XML_DATA_ITEM", "POS",
                "MW", "EXECUTION_TYPE", "GROUP"]


def oasis_publish(market: str, trade_date: date) -> datetime:
    d = trade_date - timedelta(days=MARKET_LEAD[market])
    return datetime(d.year, d.month, d.day, 9, 10, tzinfo=PT)


def write_oasis(market: str, trade_date: date) -> tuple[str, float]:
    load_type, label, item, codes = OASIS_CODES[market]
    rows: list[list[str]] = []
    system_peak = 0.0
    for he in range(1, 25):
        start = datetime(trade_date.year, trade_date.month, trade_date.day, tzinfo=PT) + timedelta(
            hours=he - 1)
        hourly = [da_mw(trade_date, start + i * STEP) for i in range(12)]
        system = sum(hourly) / 12 * VINTAGE_BIAS[market] + noise(market, trade_date, he,
                                                                  scale=40)
        system_peak = max(system_peak, system)
        parts = {tac: round(system * share + noise(tac, trade_date, he, scale=15), 2)
                 for tac, share in TAC_SHARES.items()}
        areas = {"CA ISO-TAC": round(sum(parts.values()), 2), **parts}
        for tac, mw in areas.items():
            pos, group = codes[tac]
            s_utc, e_utc = start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC)
            rows.append([str(v) for v in (
                s_utc.strftime("%Y-%m-%dT%H:%M:%S-00:00"),
                e_utc.strftime("%Y-%m-%dT%H:%M:%S-00:00"), load_type, trade_date.isoformat(),
                he, 0, market, tac, label, item, pos, mw, market, group)])
    # OASIS serves rows unsorted; keep a stable but not time-sorted order (by area, then hour).
    rows.sort(key=lambda r: (r[7], int(r[4])))
    rel = f"oasis/SLD_FCST_{market}_{trade_date:%Y%m%d}.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(OASIS_HEADER)
    w.writerows(rows)
    (HERE / rel).write_text(buf.getvalue())
    peak = max(float(r[11]) for r in rows if r[7] == "CA ISO-TAC")
    return rel, peak


# -- Flex Alert API -------------------------------------------------------------------------------

def write_flex(notices: list[Notice]) -> list[dict[str, str]]:
    flex = sorted((n for n in notices if n.type == "FLEX_ALERT"), key=lambda n: n.start)
    # Constructed: each alert announced at noon the day before (the real issue times are not
    # recorded); IDs are constructed too.
    alerts = [(100 + i, n, (n.start - timedelta(days=1)).replace(hour=12, minute=0))
              for i, n in enumerate(flex)]
    changes = sorted({START} | {t for _, n, ann in alerts for t in (ann, n.start, n.end)})
    entries = []
    for t in changes:
        def item(aid: int, n: Notice) -> dict[str, object]:
            return {"ID": aid, "Title": f"Flex alert for {n.start:%m/%d/%Y}",
                    "StartDate": f"{n.start:%m-%d-%Y %H:%M}",
                    "EndDate": f"{n.end:%m-%d-%Y %H:%M}", "Region": "Statewide"}
        active = [item(a, n) for a, n, ann in alerts if ann <= t and n.start <= t < n.end]
        future = [item(a, n) for a, n, ann in alerts if ann <= t < n.start]
        body = {"IsFlexAlertActive": bool(active), "UpdatedOn": f"{t:%m-%d-%Y %H:%M:%S}",
                "Active": active, "Future": future}
        rel = f"flexalert/ActiveFlexAlertEvents_{t:%Y%m%dT%H%M}.json"
        (HERE / rel).write_text(json.dumps(body, indent=1) + "\n")
        entries.append({"from": t.isoformat(), "file": rel})
    return entries


# -- SCE DR events --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DrEvent:
    program: str  # site code: SAI (CPP), SDP, BIP, API
    product: str
    segment: str  # RESIDENTIAL | COMMERCIAL
    ir: bool
    issued: datetime
    start: datetime
    end: datetime
    end_known_at: datetime | None  # before this the site shows TBD
    location_type: str
    locations: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.program}-{self.product}-{self.start:%Y%m%d%H%M}".replace(" ", "")

    @property
    def uuid(self) -> str:
        h = hashlib.sha256(self.key.encode()).hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def pt(d: int, hh: int, mm: int = 0, month: int = 9) -> datetime:
    return datetime(2022, month, d, hh, mm, tzinfo=PT)


def dr_events() -> list[DrEvent]:
    """Constructed SCE events consistent with the notices: CPP day-ahead on the hottest days,
    SDP and BIP/AP-I dispatched on the EEA 2 days (CAISO activates emergency DR at EEA 2)."""
    events = []
    for day in (31, 1, 2, 5, 6, 7, 8):
        month = 8 if day == 31 else 9
        start = pt(day, 16, month=month)
        issued = (start - timedelta(days=1)).replace(hour=14, minute=0)
        for seg in ("RESIDENTIAL", "COMMERCIAL"):
            events.append(DrEvent("SAI", "CPP", seg, False, issued, start,
                                  start.replace(hour=21), None, "ALL", ()))
    sdp_sublaps = ("SCEC", "SCEN", "SCEW", "SCHD", "SCLD", "SCNW")
    for issued, start, end, known in (
            (pt(5, 18, 5), pt(5, 18, 30), pt(5, 20), pt(5, 19, 40)),
            (pt(6, 14, 10), pt(6, 16), pt(6, 20), pt(6, 19, 45)),
            (pt(7, 13, 40), pt(7, 16), pt(7, 21), pt(7, 20, 30)),
            (pt(8, 14, 0), pt(8, 16), pt(8, 21), pt(8, 20, 30))):
        events.append(DrEvent("SDP", "SDP", "RESIDENTIAL", True, issued, start, end, known,
                              "SLAP", sdp_sublaps))
        events.append(DrEvent("SDP", "APS-E", "COMMERCIAL", True, issued, start, end, known,
                              "SLAP", sdp_sublaps))
        events.append(DrEvent("BIP", "BIP-30", "COMMERCIAL", True, start - timedelta(minutes=30),
                              start, end, known, "BLOCK", ("B", "C", "D", "E", "F", "G", "H")))
    events.append(DrEvent("API", "API", "COMMERCIAL", True, pt(6, 15, 30), pt(6, 16), pt(6, 20),
                          pt(6, 19, 45), "District", ("All",)))
    return events


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def dr_event_json(e: DrEvent, t: datetime) -> dict[str, object]:
    tbd = e.end_known_at is not None and t < e.end_known_at
    return {
        "eventKey": e.key, "uuid": e.uuid, "parentUuid": None,
        "program": {"SAI": "CPP"}.get(e.program, e.program), "product": e.product,
        "ir": e.ir, "startDate": f"{e.start:%m/%d/%Y}", "startTime": f"{e.start:%I:%M%p}",
        "endDate": f"{e.end:%m/%d/%Y}", "endTime": "TBD" if tbd else f"{e.end:%I:%M%p}",
        "startDateTime": _ms(e.start), "endDateTime": None if tbd else _ms(e.end),
        "estimated": tbd, "tbdFlag": tbd, "active": e.start <= t,
        "issueTime": _ms(e.issued),
        "updateTime": _ms(max(x for x in (e.issued, e.start, e.end_known_at) if x and x <= t)),
        "locationType": e.location_type, "locationNumber": None,
        "locationBlock": ",".join(e.locations) if e.location_type == "BLOCK" else None,
        "minBlock": None, "maxBlock": None,
        "locations": list(e.locations), "zipCodes": [], "cityNames": [], "countyNames": [],
        "aggNames": [],
    }


def write_sce() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    events = dr_events()
    changes = sorted({START} | {t for e in events
                                for t in (e.issued, e.start, e.end, e.end_known_at) if t})
    store_entries, update_entries = [], []
    last_update: dict[str, int] = {}
    previous: dict[str, list[dict[str, object]]] = {}
    for t in changes:
        cats: dict[str, list[dict[str, object]]] = {}
        for e in events:
            if e.issued <= t < e.end:
                state = "ACTIVE" if e.start <= t else "SCHEDULED"
                cats.setdefault(f"{e.program}_{e.segment}_{state}", []).append(
                    dr_event_json(e, t))
        # A category's time moves whenever its list changes, emptied lists included (an
        # event that went active left SCHEDULED; one that ended left ACTIVE): a reader that
        # refetches only the categories whose time moved must still see it go.
        for cat in sorted(set(cats) | set(previous)):
            if cats.get(cat) != previous.get(cat):
                last_update[cat] = _ms(t)
        previous = cats
        stamp = f"{t:%Y%m%dT%H%M}"
        store = {"eventStore": {"events": {"map": cats},
                                "lastUpdateTime": {"item": dict(sorted(last_update.items()))},
                                "todayWeather": None, "forecastWeather": None}}
        rel = f"sce/getEventStore_{stamp}.json"
        (HERE / rel).write_text(json.dumps(store, indent=1) + "\n")
        store_entries.append({"from": t.isoformat(), "file": rel})
        rel_u = f"sce/getLastUpdateTime_{stamp}.json"
        (HERE / rel_u).write_text(json.dumps(
            {"lastUpdateTime": {"item": dict(sorted(last_update.items()))}}, indent=1) + "\n")
        update_entries.append({"from": t.isoformat(), "file": rel_u})
    return store_entries, update_entries


# -- all of it ------------------------------------------------------------------------------------

def main() -> None:
    for sub in ("notices", "flexalert", "outlook", "oasis", "sce"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
        (HERE / sub).mkdir()
    notices = load_notices()
    forecasts: dict[tuple[str, date], float] = {}
    publish: dict[tuple[str, date], datetime] = {}
    oasis = []
    trade_dates = [DAYS[0] + timedelta(days=i) for i in range(-1, 20)]
    for market in ("DAM", "2DA", "7DA"):
        for td in trade_dates:
            pub = oasis_publish(market, td)
            if not START - timedelta(days=1) <= pub < END or td not in PEAKS:
                publish[(market, td)] = pub
                continue
            rel, peak = write_oasis(market, td)
            forecasts[(market, td)], publish[(market, td)] = peak, pub
            oasis.append({"market": market, "trade_date": td.isoformat(),
                          "published": pub.isoformat(), "file": rel})
    demand_days = {d.isoformat(): write_demand(d) for d in DAYS}
    ra_days = {d.isoformat(): write_ra(d) for d in DAYS}
    stats = [{"from": datetime(d.year, d.month, d.day, tzinfo=PT).isoformat(),
              "file": stats_series(d, notices, forecasts, publish)} for d in DAYS]
    store, updates = write_sce()
    sce_base = "/m.dr.website/resteasy/services"
    timeline = {
        "scenario": "2022-09-heatwave",
        "description": "CAISO and SCE sources during the 2022-08-29 .. 2022-09-09 heat wave",
        "timezone": "America/Los_Angeles",
        "start": START.isoformat(), "end": END.isoformat(),
        "paths": {
            "/outlook/current/stats.txt": {
                "type": "series", "content_type": "text/plain", "files": stats},
            "/outlook/current/demand.csv": {
                "type": "day_csv", "content_type": "text/csv", "time_column": "Time",
                "reveal_minutes": {"Current demand": 0, "Hour ahead forecast": 60},
                "days": demand_days},
            "/outlook/current/rtm_forecast_7day.csv": {
                "type": "day_csv", "content_type": "text/csv", "time_column": "Time",
                "reveal_minutes": {"Demand": 0, "Net Demand": 0, "Reserve requirement": 0},
                "days": ra_days},
            "/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents": {
                "type": "snapshots", "content_type": "application/json",
                "files": write_flex(notices)},
            "/oasisapi/SingleZip": {"type": "oasis", "forecasts": oasis},
            f"{sce_base}/getEventStore": {
                "type": "snapshots", "content_type": "application/json", "files": store},
            f"{sce_base}/getLastUpdateTime": {
                "type": "snapshots", "content_type": "application/json", "files": updates},
            "/replay/notices": {"type": "mailbox", "messages": write_notices(notices)},
        },
    }
    (HERE / "timeline.json").write_text(json.dumps(timeline, indent=1) + "\n")


if __name__ == "__main__":
    main()
