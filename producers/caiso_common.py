"""What every CAISO parser shares: Pacific wall-clock times, tolerant numbers, region names,
the severity ladder, and CSV reading by header name."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta

from monitor.clock import PACIFIC
from monitor.errors import ParseError
from monitor.events import CAISO_GRID, Severity


def pacific(naive: datetime, *, fold: int = 0) -> datetime:
    """Localise a Pacific wall-clock time. A time skipped by spring-forward moves forward by
    the gap (02:30 -> 03:30 PDT); a repeated fall-back time is its first occurrence (PDT)
    unless `fold=1`. Returned in UTC."""
    # PEP 495: a skipped time with fold=0 takes the pre-transition offset (PST), which is
    # exactly "moved forward by the gap" once converted.
    return naive.replace(tzinfo=PACIFIC, fold=fold).astimezone(UTC)


def exists_in_pacific(naive: datetime) -> bool:
    local = naive.replace(tzinfo=PACIFIC)
    return local.astimezone(UTC).astimezone(PACIFIC).replace(tzinfo=None) == naive


def is_ambiguous(naive: datetime) -> bool:
    a = naive.replace(tzinfo=PACIFIC, fold=0).utcoffset()
    b = naive.replace(tzinfo=PACIFIC, fold=1).utcoffset()
    return a != b and exists_in_pacific(naive)


def pacific_day(moment: datetime) -> date:
    return moment.astimezone(PACIFIC).date()


def outlook_file(outlook_url: str, name: str) -> str:
    """The URL of one of Today's Outlook's `current/` files."""
    return f"{outlook_url.rstrip('/')}/current/{name}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC start and end of a Pacific day (23, 24 or 25 hours long)."""
    start = datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=PACIFIC).astimezone(UTC)
    return start, end


# Today's Outlook files step every 5 minutes and stamp each interval with its END.
FIVE_MINUTES = timedelta(minutes=5)
# A Today's Outlook value is published a minute after its interval ends and polled 60-90 s
# after the mark: three intervals behind the fetch is a file that stopped moving, not a late
# poll, and its values are not current.
STALE_AFTER = 3 * FIVE_MINUTES


def interval_day(end: datetime) -> date:
    """The operating day of the 5-minute interval that ends at `end`: the day it starts in, so
    `00:00` closes the previous day and the next midnight closes this one (demand.csv and
    rtm_forecast_7day.csv alike)."""
    return pacific_day(end - FIVE_MINUTES)


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_INF = float("inf")


def one_line(exc: object, limit: int) -> str:
    """An exception's text on one line, cut to `limit` characters (for ParseError reasons)."""
    return " ".join(str(exc).split())[:limit]


def number(value: object, field: str) -> float | None:
    """A number that may arrive as int, float or string with thousands separators; blank or
    null is None (unknown, never zero); anything else is a ParseError."""
    if isinstance(value, str):
        if value.isascii() and value.replace(".", "", 1).isdigit():
            result = float(value)  # most cells: digits and a point, no regular expression
        else:
            text = value.strip().replace(",", "")
            if text == "":
                return None
            if not _NUMBER.match(text):
                raise ParseError(f"{field}: not a number: {value[:40]!r}")
            result = float(text)
    elif value is None:
        return None
    elif isinstance(value, bool):
        raise ParseError(f"{field}: expected a number, got a boolean")
    elif isinstance(value, int | float):
        result = float(value)
    else:
        raise ParseError(f"{field}: expected a number, got {type(value).__name__}")
    if result != result or result in (_INF, -_INF):
        raise ParseError(f"{field}: not a finite number")
    return result


# Every spelling CAISO has used for its regions, onto the vocabulary of monitor.events.
_REGIONS = {
    "caiso grid": CAISO_GRID,
    "statewide": CAISO_GRID,
    "iso": CAISO_GRID,
    "caiso": CAISO_GRID,
    "northern california": "Northern CA Region",
    "northern ca": "Northern CA Region",
    "northern ca region": "Northern CA Region",
    "southern california": "Southern CA Region",
    "southern ca": "Southern CA Region",
    "southern ca region": "Southern CA Region",
    "vea region": "VEA Region",
    "vea": "VEA Region",
    "south oc san diego region": "South OC San Diego Region",
    "south oc san diego": "South OC San Diego Region",
}


def normalize_region(raw: str) -> str:
    """The vocabulary name of a region; an unknown name is kept verbatim (trimmed)."""
    key = " ".join(raw.split()).strip()
    return _REGIONS.get(key.lower(), key)


def split_regions(raw: str) -> tuple[str, ...]:
    parts = [p for p in re.split(r"[;,]", raw) if p.strip()]
    return tuple(normalize_region(p) for p in parts)


# One ladder for every notice kind, so a `min_severity` means the same whatever the notice.
EEA_SEVERITY = {"WATCH": Severity.WATCH, "1": Severity.WARNING, "2": Severity.EMERGENCY,
                "3": Severity.CRITICAL}
LEGACY_SEVERITY = {"ALERT": Severity.WATCH, "WARNING": Severity.WARNING,
                   "STAGE 1": Severity.WARNING, "STAGE 2": Severity.EMERGENCY,
                   "STAGE 3": Severity.CRITICAL}
RMO_SEVERITY = Severity.ADVISORY
FLEX_SEVERITY = Severity.WATCH
TE_SEVERITY = Severity.WARNING


def decode_text(raw: bytes, what: str) -> str:
    """UTF-8 (with or without BOM), falling back to cp1252 for stray Windows bytes."""
    if b"\0" in raw[:4096]:
        raise ParseError(f"{what}: binary data, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


_FIELD_LIMIT = csv.field_size_limit()


def csv_table(text: str, what: str, required: tuple[str, ...],
              where: Mapping[str, Collection[str]] | None = None,
              ) -> tuple[dict[str, int], Iterator[list[str]]]:
    """The column of each header name (stray `\r` and spaces removed) and the data rows as
    lists of cells, unstripped, padded to the header's width; blank rows are skipped, and so
    are rows whose (stripped) cell in a `where` column is not one of its values. A header
    lacking a `required` or `where` name, or unreadable CSV, is a ParseError.

    Text without a quote character is split with str.split, several times faster than
    csv.reader and the same cells: every file CAISO serves is unquoted. A row `where` turns
    away is split only as far as its last `where` column."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise ParseError(f"{what}: empty file")
    named = (*required, *(where or ()))
    if '"' in text:
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ParseError(f"{what}: unreadable CSV: {exc}") from None
        if header is None:
            raise ParseError(f"{what}: empty file")
        columns = _columns(header, what, named)
        rows = _read_rows(reader, len(header), what)
        if where:
            rows = _kept(rows, [(columns[name], values) for name, values in where.items()])
        return columns, rows
    lines = iter(text.split("\n"))
    header = _cells(next(lines), what)
    columns = _columns(header, what, named)
    if where:
        lines = _kept_lines(lines, [(columns[name], values) for name, values in where.items()])
    return columns, _split_rows(lines, len(header), what)


def cut_mid_line(text: str, what: str) -> None:
    """Every file CAISO serves ends its last row with a line break, so a body without
    one was cut in transit inside that row, where a number may have lost its last digits:
    a ParseError (reason `truncated`), never a row read as if whole."""
    if text and not text.endswith(("\n", "\r")):
        tail = text[text.rfind("\n") + 1:][-40:]
        raise ParseError(f"{what}: cut mid-line: the last row {tail!r} has no line break",
                         reason="truncated")


def _kept(rows: Iterator[list[str]], tests: list[tuple[int, Collection[str]]]
          ) -> Iterator[list[str]]:
    for row in rows:
        if all(row[i].strip() in values for i, values in tests):
            yield row


def _kept_lines(lines: Iterator[str], tests: list[tuple[int, Collection[str]]]
                ) -> Iterator[str]:
    last = max(i for i, _ in tests)
    for line in lines:
        cells = line.split(",", last + 1)
        for i, values in tests:
            cell = cells[i] if i < len(cells) else ""
            if cell not in values and cell.strip() not in values:
                break
        else:
            yield line


def _columns(header: list[str], what: str, required: tuple[str, ...]) -> dict[str, int]:
    names = [h.strip().strip("\r") for h in header]
    missing = [r for r in required if r not in names]
    if missing:
        got = ", ".join(" ".join(n.split())[:30] for n in names[:12])
        raise ParseError(f"{what}: header lacks {', '.join(missing)} (got {got[:300]})")
    return {name: i for i, name in enumerate(names)}


def _cells(line: str, what: str) -> list[str]:
    """One unquoted line as csv.reader reads it, its field size limit included."""
    if not line:
        return []
    cells = line.split(",")
    if len(line) > _FIELD_LIMIT and max(map(len, cells)) > _FIELD_LIMIT:
        raise ParseError(f"{what}: unreadable CSV: field larger than field limit "
                         f"({_FIELD_LIMIT})")
    return cells


def _split_rows(lines: Iterator[str], width: int, what: str) -> Iterator[list[str]]:
    for line in lines:
        cells = _cells(line, what) if len(line) > _FIELD_LIMIT or not line else line.split(",")
        if len(cells) < width or not cells:
            if not line.replace(",", "").strip():
                continue
            cells += [""] * (width - len(cells))
        elif not cells[0].strip() and not line.replace(",", "").strip():
            continue
        yield cells


def _read_rows(reader: Iterator[list[str]], width: int, what: str) -> Iterator[list[str]]:
    try:
        for row in reader:
            if len(row) < width or not row:
                if not "".join(row).strip():
                    continue
                row += [""] * (width - len(row))
            elif not row[0].strip() and not "".join(row).strip():
                continue
            yield row
    except csv.Error as exc:
        raise ParseError(f"{what}: unreadable CSV: {exc}") from None


def csv_rows(text: str, what: str, required: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Rows as dicts keyed by header name, cells stripped (see `csv_table`)."""
    columns, rows = csv_table(text, what, required)
    for row in rows:
        yield {name: row[i].strip() for name, i in columns.items()}


def strptime(value: str, fmt: str, field: str) -> datetime:
    try:
        return datetime.strptime(value.strip(), fmt)  # noqa: DTZ007 - Pacific wall clock
    except ValueError:
        raise ParseError(f"{field}: not a {fmt} time: {value[:40]!r}") from None
