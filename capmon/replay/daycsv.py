"""Today's Outlook day files revealed as the day goes: values not known yet are blank.

A file is parsed once (rows and the time of each row); what a request sees depends only on
how many rows of each hidden column are known at that moment, so rendered bodies are cached
by those cut-offs and a poll every five minutes costs a dictionary lookup.
"""

from __future__ import annotations

import bisect
import csv
import io
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from monitor.clock import PACIFIC

# A 5-minute value is published a minute after its mark.
PUBLISH_DELAY = timedelta(minutes=1)


@lru_cache(maxsize=64)
def _parsed(path: Path, day: date, time_column: str
            ) -> tuple[list[str], tuple[list[str], ...], tuple[datetime, ...]]:
    """Header, data rows, and each row's time (aware, Pacific), ascending."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = tuple(row for row in reader if row)
    t_col = header.index(time_column)
    midnight = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    times: list[datetime] = []
    for row in rows:
        label = row[t_col].strip()
        if "/" in label:  # "MM/DD/YYYY HH:MM" (rtm_forecast_7day.csv): dated
            slot = datetime.strptime(label, "%m/%d/%Y %H:%M").replace(tzinfo=PACIFIC)
        else:  # "HH:MM" (demand.csv): the day comes from the URL or the clock
            hh, mm = (int(x) for x in label.split(":"))
            slot = midnight + timedelta(hours=hh, minutes=mm)
            if times and slot <= times[-1]:  # the trailing 00:00 belongs to the next day
                slot += timedelta(days=1)
        times.append(slot)
    return header, rows, tuple(times)


def _line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue()


@lru_cache(maxsize=64)
def _lines(path: Path, day: date, time_column: str, hidden: tuple[int, ...]
           ) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Header line, each row's full line, and each row's line with `hidden` columns blank."""
    header, rows, _ = _parsed(path, day, time_column)
    full = tuple(_line(r) for r in rows)
    blank = tuple(_line(["" if i in hidden else v for i, v in enumerate(r)]) for r in rows)
    return _line(header), full, blank


@lru_cache(maxsize=512)
def _render(path: Path, day: date, time_column: str,
            cutoffs: tuple[tuple[int, int], ...]) -> bytes:
    if len({c for _, c in cutoffs}) == 1:
        # Every hidden column turns known at the same row (rtm_forecast_7day.csv): splice.
        cut = cutoffs[0][1]
        head, full, blank = _lines(path, day, time_column, tuple(i for i, _ in cutoffs))
        return (head + "".join(full[:cut]) + "".join(blank[cut:])).encode()
    header, rows, _ = _parsed(path, day, time_column)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    limits = dict(cutoffs)
    for n, row in enumerate(rows):
        writer.writerow(["" if n >= limits.get(i, n + 1) else v for i, v in enumerate(row)])
    return out.getvalue().encode()


def reveal(path: Path, day: date, now: datetime, time_column: str,
           reveal_minutes: dict[str, int]) -> bytes:
    """The file as it stood at `now`: a column listed in `reveal_minutes` shows a row's value
    from the row's time plus the publish delay minus that many minutes (so a positive number
    reveals forecasts ahead of time); later rows are blank, never zero."""
    header, _, times = _parsed(path, day, time_column)
    cutoffs = tuple(sorted(
        (header.index(col), bisect.bisect_right(times, now - PUBLISH_DELAY
                                                + timedelta(minutes=minutes)))
        for col, minutes in reveal_minutes.items() if col in header))
    return _render(path, day, time_column, cutoffs)
