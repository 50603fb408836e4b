"""SCE's DR event history files: pure parsers.

Three layouts, told apart by their header:

- the site's AP-I/BIP/SDP history (`Program,Product,Dipsatch Type,Dispatch Location,Event
  Start Date,Event Start Time,Event End Date,Event End Time,Comments,...`, 1998-2011): ISO
  dates, `H:MM:SS` times without zero padding (`8:53:00` beside `15:32:00`), quoted comments
  spanning lines, CRLF, an empty trailing column, one event (2000-09-18) without times;
- its CBP/DBP/CPP/DRC log (`date,program,program_option,schedule,trigger_status,start_he,
  end_he,comments`, 2008-2010): `M/D/YYYY` dates and hour-ending integers (HE15 = 14:00-15:00,
  so start_he 13 starts at 12:00 and end_he 17 ends at 17:00);
- the site's CSV export (`Product,Start Date,End Date,Start Time,End Time[,Block]`), whose
  program is read from the product name.

Every row is an ended event (cancelled when its comment says so: the files have no structured
flag). Times are America/Los_Angeles. A row that does not parse rejects the whole file with its
line number: an import is all or nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from monitor.clock import PACIFIC
from monitor.errors import ParseError
from monitor.events import Condition, Status
from producers.dr_events import CustomerClass, DrEvent, keyed, to_condition
from producers.sce_api import SCE_TAC
from producers.sce_locations import is_all, normalize_location_type, resolve
from producers.sce_programs import Program, is_test, notice_of_product, program_for
from producers.sce_values import ValueFormatError, local, parse_date, parse_time

SITE_URL = "https://www.sce.openadr.com/dr.website/scepr-event-history.jsf"
_CANCELLED = re.compile(r"\bcancel+ed\b", re.IGNORECASE)
MAX_ROWS = 200_000


def _rows(raw: bytes) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")  # Excel exports
        except UnicodeDecodeError:
            raise ParseError("file is not text", reason="encoding") from None
    if "\x00" in text:
        raise ParseError("file is not text (NUL bytes)", reason="encoding")
    if text and not text.endswith(("\n", "\r")):
        # Every history file ends its last row with a line break: without one the file was
        # cut inside that row, and its last cell (a time, a comment) may be a fragment.
        raise ParseError(f"line {text.count(chr(10)) + 1}: cut mid-line (no line break at the "
                         "end of the file)", reason="truncated")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ParseError("empty file", reason="empty") from None
    except csv.Error as exc:
        raise ParseError(f"line 1: {exc}", reason="syntax") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for fields in reader:
                if reader.line_num > MAX_ROWS:
                    raise ParseError("file too long", reason="size")
                if any(f.strip() for f in fields):
                    yield reader.line_num, fields
        except csv.Error as exc:
            raise ParseError(f"line {reader.line_num}: {exc}", reason="syntax") from None

    return [h.strip().lower() for h in header], rows()


def parse_history(raw: bytes) -> list[DrEvent]:
    """Every event of a history file, in file order, with stable keys."""
    header, rows = _rows(raw)
    if header[:4] == ["program", "product", "dipsatch type", "dispatch location"] or \
            header[:4] == ["program", "product", "dispatch type", "dispatch location"]:
        parse_row = _dispatch_row
    elif header[:3] == ["date", "program", "program_option"]:
        parse_row = _hour_ending_row
    elif header[:5] == ["product", "start date", "end date", "start time", "end time"]:
        parse_row = _export_row
    else:
        raise ParseError(f"unknown history header: {','.join(header)[:120]}", reason="shape")
    events = []
    for line, fields in rows:
        if len(fields) < len(header) - 2:
            raise ParseError(f"line {line}: {len(fields)} fields, header has {len(header)}",
                             reason="shape")
        row = dict(zip(header, fields, strict=False))
        try:
            events.append(parse_row(row))
        except (ValueFormatError, KeyError) as exc:
            raise ParseError(f"line {line}: {exc}", reason="value") from None
    return keyed(events)


def _event(program: Program, product: str | None, start: datetime | None,
           end: datetime | None, location_type: str | None, locations: tuple[str, ...],
           comments: str | None, *, trigger: str | None = None, notice: str | None = None,
           day: date | None = None) -> DrEvent:
    if start is not None and end is not None and end < start:
        raise ValueFormatError(f"ends {end:%Y-%m-%d %H:%M} before it starts")
    geo = resolve(location_type, locations)
    klass: CustomerClass | None = None
    if program.code in ("AP-I", "BIP", "CBP", "DBP", "DRC") or (
            program.code == "CPP" and product and "large" in product.lower()):
        klass = "commercial"
    return DrEvent(
        utility="SCE", program=program.code, product=product or None,
        severity=program.severity, interruptible=program.interruptible,
        customer_class=klass, listed=None, start=start, end=end,
        location_type=location_type, locations=locations,
        blocks=locations if location_type == "BLOCK" else (),
        sublaps=geo.sublaps, zips=geo.zips, location_resolved=geo.resolved,
        regions=(SCE_TAC,), notice=notice_of_product(notice or product), trigger=trigger,
        test_event=is_test(comments), comments=comments, source_url=SITE_URL,
        channel="history", event_date=day or (start.date() if start else None),
    )


def _dispatch_row(row: dict[str, str]) -> DrEvent:
    program = program_for(row["program"])
    ltype = normalize_location_type(row.get("dipsatch type") or row.get("dispatch type"))
    where = row["dispatch location"].strip()
    locations = ("All",) if is_all(where) else (where.upper(),)
    start_date, start_time = row["event start date"].strip(), row["event start time"].strip()
    end_date, end_time = row["event end date"].strip(), row["event end time"].strip()
    comments = row.get("comments", "").strip() or None
    day = parse_date(start_date)
    if not start_time:
        if end_time:
            raise ValueFormatError("an end time without a start time")
        # 2000-09-18: "created ... from historical archives" with no times at all.
        return _event(program, row["product"].strip(), None, None, ltype, locations,
                      comments, day=day)
    start = local(day, parse_time(start_time))
    end = local(parse_date(end_date or start_date), parse_time(end_time)) if end_time else None
    return _event(program, row["product"].strip(), start, end, ltype, locations, comments)


def _hour_ending(day: date, he: str, *, ending: bool) -> datetime:
    hour = int(he.strip()) if he.strip().isdigit() else -1
    if not 1 <= hour <= 25:
        raise ValueFormatError(f"bad hour ending {he!r}")
    hour = hour if ending else hour - 1
    return local(day, time(0)) + timedelta(hours=hour) if hour > 23 else local(day, time(hour))


def _hour_ending_row(row: dict[str, str]) -> DrEvent:
    program = program_for(row["program"])
    day = parse_date(row["date"])
    start = _hour_ending(day, row["start_he"], ending=False)
    end = _hour_ending(day, row["end_he"], ending=True)
    comments = row.get("comments", "").strip() or None
    return _event(program, row["program_option"].strip(), start, end, None, (), comments,
                  trigger=row.get("trigger_status", "").strip() or None,
                  notice=row.get("schedule", "").strip() or None)


def _program_of_product(product: str) -> Program:
    text = product.strip().upper()
    if text.startswith(("APS", "SDP")):
        return program_for("SDP")
    if text.startswith(("I6", "TOU-BIP")):
        return program_for("BIP")
    return program_for(re.split(r"[\s_-]", text)[0])


def _export_row(row: dict[str, str]) -> DrEvent:
    product = row["product"].strip()
    program = _program_of_product(product)
    start = local(parse_date(row["start date"]), parse_time(row["start time"]))
    end = local(parse_date(row["end date"] or row["start date"]), parse_time(row["end time"]))
    block = row.get("block", "").strip()
    ltype, locations = (None, ()) if not block else (
        ("ALL", ("All",)) if is_all(block) else ("BLOCK", (block.upper(),)))
    return _event(program, product, start, end, ltype, locations, None)


def history_conditions(raw: bytes) -> list[Condition]:
    """Conditions for a history file: ended (or cancelled), deterministic revisions.

    observed_at is the event's end (else its start, else its day): importing the same file twice
    yields the same revisions, so the store changes nothing the second time.
    """
    out = []
    for ev in parse_history(raw):
        when = ev.end or ev.start or (
            datetime.combine(ev.event_date, time(0), tzinfo=PACIFIC) if ev.event_date else None)
        assert when is not None
        c = to_condition(ev, when, observed_at=when)
        if ev.comments and _CANCELLED.search(ev.comments):
            c = c.model_copy(update={"status": Status.CANCELLED})
        out.append(c)
    return out


def parse_history_conditions(raw: bytes, fetched_at: datetime) -> list[Condition]:
    """`capmon parse sce-history`: the history file as conditions (fetched_at is not used:
    history revisions are fixed by the events themselves)."""
    return history_conditions(raw)
