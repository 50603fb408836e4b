"""Revealed day files equal a plain row-by-row reference, on both render paths."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from capmon.replay.daycsv import reveal

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2022-09-heatwave"
PT = ZoneInfo("America/Los_Angeles")


def reference(path: Path, day: date, now: datetime, reveal_minutes: dict[str, int]) -> bytes:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header, body = rows[0], rows[1:]
    hidden = {header.index(c): m for c, m in reveal_minutes.items()}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    previous = None
    for row in body:
        label = row[0]
        if "/" in label:
            t = datetime.strptime(label, "%m/%d/%Y %H:%M").replace(tzinfo=PT)
        else:
            hh, mm = map(int, label.split(":"))
            t = datetime(day.year, day.month, day.day, hh, mm, tzinfo=PT)
            if previous is not None and t <= previous:
                t += timedelta(days=1)
        previous = t
        w.writerow(["" if i in hidden and t + timedelta(minutes=1 - hidden[i]) > now else v
                    for i, v in enumerate(row)])
    return out.getvalue().encode()


def test_reveal_matches_the_reference_through_a_day() -> None:
    day = date(2022, 9, 6)
    cases = [
        (SCENARIO / "outlook/history/20220906/demand.csv",
         {"Current demand": 0, "Hour ahead forecast": 60}),  # unequal cut-offs
        (SCENARIO / "outlook/history/20220906/rtm_forecast_7day.csv",
         {"Demand": 0, "Net Demand": 0, "Reserve requirement": 0}),  # the splice path
    ]
    start = datetime(2022, 9, 6, 0, 0, 30, tzinfo=PT)
    for minutes in (0, 1, 2, 7, 61, 17 * 60 + 2, 23 * 60 + 58, 24 * 60 + 3):
        now = start + timedelta(minutes=minutes)
        for path, columns in cases:
            assert reveal(path, day, now, "Time", columns) == reference(path, day, now, columns), (
                path.name, now)
