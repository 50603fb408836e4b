"""The text of one CAISO emergency notice -> a `Notice` (what it says, nothing inferred yet).

Three formats (docs/sources-caiso.md, Notice emails), recognised by phrases rather than by
layout so that
line wraps, `|` wrap artifacts, doubled spaces and page headers do not matter:

- legacy (1998 to April 2022): `STATEWIDE ALERT NOTICE [202002418]`, `CAISO Grid Stage 3 System
  Emergency Notice [...]`, "effective 08/14/2020 at 18:36 through ...", `Cancellation issued at`;
  before that `STAGE n EMERGENCY NOTICE` (2000-2002) and `STAGE n ELECTRICAL EMERGENCY Notice`
  (2006), whose windows are hour-ending: "Effective 07/24/2006 at 13:00, from Hour Ending 14
  through Hour Ending 21" (HE14 is 13:00-14:00, so this is 13:00-21:00);
- 2022/2023: `CAISO EEA 3 NOTICE [202202696]`, `CAISO Grid Restricted Maintenance Operations
  [...]`, `Northern CA Region TRANSMISSION EMERGENCY Notice [...]`, numberless EEA 2 notices,
  `This notice supersedes notice ...`, and Flex Alerts in prose ("from August 31 at 4:00 PM");
- 2024 onward (email): `<Type> declared for <Region>, effective A - B - <12-digit event>`,
  `Notice No: <event>-NN`, `Notice issued at: [MM/DD/YYYY HH:MM:SS]`, and `ENDED:` follow-ups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.errors import ParseError
from monitor.events import Kind
from producers.caiso_common import normalize_region, pacific

_DT = r"([0-9]{1,2}/[0-9]{1,2}/[0-9]{4})\s*(?:at\s*)?([0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)"
_WINDOW = re.compile(_DT + r"\s*(?:through|thru|to|-)\s*" + _DT, re.I)
# "Effective <date> at <time> ... from Hour Ending a through Hour Ending b" (2000-2006).
_EFFECTIVE_AT = re.compile(
    r"effective\s+([0-9]{1,2}/[0-9]{1,2}/[0-9]{4})(?:\s*(?:at\s*)?([0-9]{1,2}:[0-9]{2})\b)?", re.I)
_HOUR_ENDING = re.compile(
    r"from\s+(?:Hour\s+Ending|HE)\s*([0-9]{1,2})\s+(?:through|thru|to|-)\s+"
    r"(?:Hour\s+Ending|HE)\s*([0-9]{1,2})\b", re.I)
_ISSUED = re.compile(r"Notice issued at\s*:?\s*\[?\s*" + _DT, re.I)
_CANCELLED = re.compile(r"Cancell?ation issued at\s*:?\s*" + _DT, re.I)
_NUMBER = re.compile(r"\[\s*([0-9]{9,12})\s*\]")
_NOTICE_NO = re.compile(r"Notice No\s*:?\s*([0-9]{9,12})\s*-\s*([0-9]+)", re.I)
_EVENT = re.compile(r"effective\s+" + _DT + r"\s*-\s*" + _DT + r"\s*-\s*([0-9]{12})", re.I)
_SUPERSEDES = re.compile(
    r"supersedes\s+notice\s+([0-9]{9,12})(?:\s+(.{0,60}?)\s+issued\s+" + _DT + ")?", re.I)
_REASON = re.compile(r"Reason\s*:\s*(.*)", re.I | re.S)
_REGION = re.compile(
    r"(Northern CA(?: Region)?|Southern CA(?: Region)?|VEA Region|South OC San Diego(?: Region)?"
    r"|CAISO Grid|STATEWIDE|Northern California|Southern California)", re.I)
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_FLEX_PROSE = re.compile(
    r"from\s+([A-Za-z]+)\s+([0-9]{1,2})\s+at\s+([0-9]{1,2}:[0-9]{2}\s*[AP]M)\s+to\s+([A-Za-z]+)\s+"
    r"([0-9]{1,2})\s+at\s+([0-9]{1,2}:[0-9]{2}\s*[AP]M)", re.I)
_FLEX_YEAR = re.compile(r"effective\s+\w+,\s+[A-Za-z]+\s+[0-9]{1,2},\s+([0-9]{4})", re.I)
# Where the reason stops and CAISO's boilerplate begins.
_BOILERPLATE = re.compile(
    r"(CAISO is forecasting|CAISO analysis shows|During the effective|Refer to the ISO"
    r"|For more information|Restricted Maintenance Operations, as detailed|Monitor system"
    r"|Notice issued at|Conservation efforts|To preserve grid|Maximum conservation"
    r"|The ISO will be calling|The ISO requires|Non-Spinning|Spinning Reserves"
    r"|Market participants|Energy Market Participants|California Independent System Operator,"
    r"|Unsubscribe|A news release|This notice supersedes|Utility Distribution Companies)", re.I)
_ARTIFACT_LINES = re.compile(
    r"^(Page [0-9]+|Grid Emergencies Record For [0-9]{4}|AWE Grid History Report"
    r"|Date Day Region Time Frame AWE Event Reason)\s*$", re.I)
_MAX_TEXT = 200_000


@dataclass(frozen=True)
class Notice:
    kind: Kind
    level: str | None  # EEA: WATCH/1/2/3; legacy: ALERT/WARNING/STAGE n
    regions: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    number: str | None = None  # 9-digit (2020-2023) or the 12-digit event id (2024+)
    sequence: str | None = None  # the -NN of `Notice No` (2024+)
    title: str | None = None
    reason: str | None = None
    issued_at: datetime | None = None
    supersedes: tuple[str, ...] = ()
    supersedes_issued_at: datetime | None = None
    ended: bool = False  # a 2024+ `ENDED:` message: `end` is the actual end
    cancelled_at: datetime | None = None
    step: int | None = None  # EEA 3: 1 preparing, 2 ordering rotating outages

    @property
    def type_key(self) -> str:
        """`eea2`, `rmo`, `flex`, `legacy-stage3`...: names a notice that has no number."""
        base = {Kind.CAISO_EEA: "eea", Kind.CAISO_RMO: "rmo", Kind.CAISO_FLEX_ALERT: "flex",
                Kind.CAISO_TRANSMISSION_EMERGENCY: "te", Kind.CAISO_LEGACY: "legacy-"}[self.kind]
        level = (self.level or "").lower().replace(" ", "")
        return base + level


def clean(text: str) -> str:
    """One line of text: `|` artifacts removed, page headers dropped, spaces collapsed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    lines = [ln for ln in text.split("\n") if not _ARTIFACT_LINES.match(ln.strip())]
    joined = " ".join(lines)
    joined = joined.replace(".|", ". ").replace("|", "")
    return re.sub(r"\s+", " ", joined).strip()


def _dt(day: str, clock: str, *, end_of_day: bool = False) -> datetime:
    fmt = "%m/%d/%Y %H:%M:%S" if clock.count(":") == 2 else "%m/%d/%Y %H:%M"
    try:
        naive = datetime.strptime(f"{day} {clock}", fmt)  # noqa: DTZ007 - Pacific wall clock
    except ValueError:
        raise ParseError(f"notice: bad date/time {day} {clock}") from None
    if end_of_day and naive.hour == 23 and naive.minute == 59:
        naive = naive + timedelta(minutes=1)  # "23:59" means end of day
    return pacific(naive)


def _kind(head: str) -> tuple[Kind, str | None]:
    h = head.lower()
    if "transmission emergency" in h:
        return Kind.CAISO_TRANSMISSION_EMERGENCY, None
    if "restricted maintenance operation" in h:
        return Kind.CAISO_RMO, None
    if re.search(r"eea\)?\s*watch", h):
        return Kind.CAISO_EEA, "WATCH"
    if m := re.search(r"eea\)?\s*([123])\b", h):
        return Kind.CAISO_EEA, m.group(1)
    if "flex alert" in h:
        return Kind.CAISO_FLEX_ALERT, None
    if m := re.search(r"stage\s*([123])\s*(?:system\s*|electrical\s*)?emergency", h):
        return Kind.CAISO_LEGACY, f"STAGE {m.group(1)}"
    if re.search(r"\bwarning notice\b", h):
        return Kind.CAISO_LEGACY, "WARNING"
    if re.search(r"\balert notice\b", h):
        return Kind.CAISO_LEGACY, "ALERT"
    raise ParseError("notice: no known notice type (EEA, RMO, TE, Flex Alert, legacy stage)")


def _flex_window(text: str) -> tuple[datetime, datetime] | None:
    m = _FLEX_PROSE.search(text)
    year = _FLEX_YEAR.search(text)
    if not m or not year:
        return None
    out = []
    for month, day, clock in ((m.group(1), m.group(2), m.group(3)),
                              (m.group(4), m.group(5), m.group(6))):
        if month.lower() not in _MONTHS:
            raise ParseError(f"notice: unknown month {month!r}")
        try:
            naive = datetime.strptime(  # noqa: DTZ007 - Pacific wall clock
                f"{year.group(1)} {_MONTHS.index(month.lower()) + 1} {day} "
                f"{clock.replace(' ', '').upper()}", "%Y %m %d %I:%M%p")
        except ValueError:
            raise ParseError(f"notice: bad Flex Alert time {month} {day} {clock}") from None
        out.append(pacific(naive))
    return out[0], out[1]


def _hour_ending_window(head: str) -> tuple[datetime, datetime] | None:
    """The 2000-2006 window: from the start of hour-ending `a` (or the effective time, if
    later) to the end of hour-ending `b`, wall clock on the effective date; HE24 ends at the
    next midnight, and `b` below `a` runs into the next day."""
    hours = _HOUR_ENDING.search(head)
    effective = _EFFECTIVE_AT.search(head)
    if not hours or not effective:
        return None
    first, last = int(hours.group(1)), int(hours.group(2))
    if not (1 <= first <= 24 and 1 <= last <= 24):
        raise ParseError(f"notice: no such hour ending: HE{first} through HE{last}")
    try:
        day = datetime.strptime(effective.group(1), "%m/%d/%Y")  # noqa: DTZ007 - Pacific wall
    except ValueError:
        raise ParseError(f"notice: bad date {effective.group(1)}") from None
    start = pacific(day + timedelta(hours=first - 1))
    end = pacific(day + timedelta(days=1 if last < first else 0, hours=last))
    if effective.group(2):
        start = max(start, _dt(effective.group(1), effective.group(2)))
    return start, end


def _reason(text: str) -> str | None:
    m = _REASON.search(text)
    if not m:
        return None
    body = m.group(1)
    stop = _BOILERPLATE.search(body)
    reason = (body[:stop.start()] if stop else body).strip()
    return reason[:500] or None


def _title(raw: str) -> str | None:
    for line in raw.replace("\r", "").split("\n"):
        s = " ".join(line.replace("|", "").split())
        if s and not _ARTIFACT_LINES.match(s) and s.lower() not in ("subject", "message"):
            return s[:200]
    return None


def parse_notice(raw_text: str) -> Notice:
    if len(raw_text) > _MAX_TEXT:
        raise ParseError(f"notice: {len(raw_text)} characters is not a notice")
    text = clean(raw_text)
    if not text:
        raise ParseError("notice: empty")
    ended = bool(re.match(r"^(?:Subject\s+)?ENDED\s*:", text, re.I)) or " ENDED: " in f" {text}"
    reason_at = _REASON.search(text)
    head = text[:reason_at.start()] if reason_at else text
    kind, level = _kind(head[:1500])

    window = _WINDOW.search(head)
    start = end = None
    if window:
        start = _dt(window.group(1), window.group(2))
        end = _dt(window.group(3), window.group(4), end_of_day=True)
    elif kind is Kind.CAISO_FLEX_ALERT and (flex := _flex_window(text)):
        start, end = flex
    elif kind is Kind.CAISO_LEGACY and (hour_ending := _hour_ending_window(head)):
        start, end = hour_ending
    else:
        raise ParseError("notice: no effective window")
    if end < start:
        raise ParseError("notice: window ends before it starts")

    number = sequence = None
    if event := _EVENT.search(head):
        number = event.group(5)
    if no := _NOTICE_NO.search(text):
        number, sequence = number or no.group(1), no.group(2)
    if number is None and (bracket := _NUMBER.search(head)):
        number = bracket.group(1)

    region_m = _REGION.search(head)
    regions = (normalize_region(region_m.group(1)),) if region_m else ("CAISO Grid",)
    issued = _ISSUED.search(text)
    cancelled = _CANCELLED.search(text)
    sup = _SUPERSEDES.search(text)
    step = None
    if level == "3":
        if re.search(r"ordering rotating", text, re.I):
            step = 2
        elif re.search(r"preparing for rotating", text, re.I):
            step = 1
    return Notice(
        kind=kind, level=level, regions=regions, start=start, end=end, number=number,
        sequence=sequence, title=_title(raw_text), reason=None if ended else _reason(text),
        issued_at=_dt(issued.group(1), issued.group(2)) if issued else None,
        supersedes=(sup.group(1),) if sup else (),
        supersedes_issued_at=_dt(sup.group(3), sup.group(4)) if sup and sup.group(3) else None,
        ended=ended,
        cancelled_at=_dt(cancelled.group(1), cancelled.group(2)) if cancelled else None,
        step=step)
