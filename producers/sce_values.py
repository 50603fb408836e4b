"""SCE's value formats: dates, times and `TBD`, all in Pacific local time.

The status pages and the JSON API show `MM/dd/yyyy` and `hh:mma` (`04:00PM`); the history
files use ISO dates or `M/D/YYYY`, and `H:MM:SS` times without zero padding (`8:53:00` beside
`15:32:00`). An unknown end is the literal `TBD`. Times are wall-clock America/Los_Angeles and
are kept in that zone, so the offset shows whether daylight time applied.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from monitor.clock import PACIFIC

_DATE_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_DATE_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?$")


class ValueFormatError(ValueError):
    """A date or time the site's formats do not allow."""


def is_tbd(text: str | None) -> bool:
    return text is not None and text.strip().upper() in ("TBD", "T.B.D.", "TBA")


def parse_date(text: str) -> date:
    s = text.strip()
    m = _DATE_US.match(s)
    try:
        if m:
            return date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        m = _DATE_ISO.match(s)
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise ValueFormatError(f"bad date {text!r}: {exc}") from None
    raise ValueFormatError(f"bad date {text!r}")


def parse_time(text: str) -> time:
    m = _TIME.match(text.strip())
    if not m:
        raise ValueFormatError(f"bad time {text!r}")
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    meridiem = (m.group(4) or "").replace(".", "").upper()
    if meridiem:
        if not 1 <= hour <= 12:
            raise ValueFormatError(f"bad time {text!r}")
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    # 24:00 ends a day in some exports; the caller cannot express it as a time of day.
    if hour > 23 or minute > 59 or second > 59:
        raise ValueFormatError(f"bad time {text!r}")
    return time(hour, minute, second)


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=PACIFIC)


def local_from(date_text: str, time_text: str) -> datetime:
    return local(parse_date(date_text), parse_time(time_text))


def from_epoch_ms(value: object) -> datetime:
    """An epoch-milliseconds value (number or numeric string) as Pacific local time."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueFormatError(f"bad epoch value {value!r}")
    try:
        ms = float(value)
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(PACIFIC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueFormatError(f"bad epoch value {value!r}: {exc}") from None
