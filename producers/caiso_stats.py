"""Today's Outlook `stats.txt` -> one `caiso.status` condition.

The file is one JSON object despite its name. Every field is optional and numbers may arrive as
strings with thousands separators; but `gridstatus` (the labels in effect now) must be there:
without it we cannot tell "Normal" from an emergency, so its absence is a ParseError, never
"Normal". Labels are matched on keywords onto the notice kinds; unknown labels are kept verbatim.
A truncated body is not JSON (a ParseError). A `slotDate` or `CurrentSystemDemandTS` more than
`STALE_AFTER` before the fetch is a ParseError (reason `stale`): the file stopped moving, and
neither its labels nor its current demand are current.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from monitor.attributes import StatusAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Severity, Status, Window
from producers.caiso_common import (
    EEA_SEVERITY,
    FLEX_SEVERITY,
    LEGACY_SEVERITY,
    RMO_SEVERITY,
    STALE_AFTER,
    TE_SEVERITY,
    number,
    one_line,
    outlook_file,
    pacific,
)
from producers.single_url import SingleUrlSource
from producers.source import Schedule

CONDITION_ID = "caiso.status"
_TS_DIGITS = re.compile(r"^\d{12,14}$")


def label_kind(label: str) -> tuple[str | None, Severity]:
    """The notice kind a grid-status label names, and its severity (None: no kind)."""
    text = label.lower()
    if re.search(r"\bnormal\b", text):
        return None, Severity.INFO
    if "transmission" in text:
        return Kind.CAISO_TRANSMISSION_EMERGENCY.value, TE_SEVERITY
    if "eea" in text or "energy emergency" in text:
        if "watch" in text:
            return Kind.CAISO_EEA.value, EEA_SEVERITY["WATCH"]
        level = re.search(r"(?:eea\)?|level)\s*([123])", text)
        return Kind.CAISO_EEA.value, EEA_SEVERITY[level.group(1) if level else "WATCH"]
    if "restricted maintenance" in text or re.search(r"\brmo\b", text):
        return Kind.CAISO_RMO.value, RMO_SEVERITY
    if "flex" in text:
        return Kind.CAISO_FLEX_ALERT.value, FLEX_SEVERITY
    stage = re.search(r"stage\s*([123])", text)
    if stage:
        return Kind.CAISO_LEGACY.value, LEGACY_SEVERITY[f"STAGE {stage.group(1)}"]
    if re.search(r"\bwarning\b", text):
        return Kind.CAISO_LEGACY.value, LEGACY_SEVERITY["WARNING"]
    if re.search(r"\balert\b", text):
        return Kind.CAISO_LEGACY.value, LEGACY_SEVERITY["ALERT"]
    # An unknown label may well be an emergency we have no word for: never "info".
    return None, Severity.ADVISORY


def _pacific_time(value: object, field: str) -> datetime | None:
    """`slotDate` / `*TS` values: `M/D/YYYY HH:MM[:SS]`, ISO 8601, or `YYYYMMDDHHMM[SS]`.
    The formats are unconfirmed (docs/sources-caiso.md, `stats.txt`): an unknown form is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if _TS_DIGITS.match(text):
        fmt = "%Y%m%d%H%M%S" if len(text) == 14 else "%Y%m%d%H%M"
        try:
            return pacific(datetime.strptime(text, fmt))  # noqa: DTZ007
        except ValueError:
            return None
    for fmt in ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p",
                "%m/%d/%Y %I:%M:%S %p"):
        try:
            return pacific(datetime.strptime(text, fmt))  # noqa: DTZ007
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return pacific(parsed) if parsed.tzinfo is None else parsed


def _num(obj: dict[str, Any], *names: str) -> float | None:
    for name in names:
        if name in obj:
            value = number(obj[name], name)
            if value is not None:
                return value
    return None


def parse(raw: bytes, fetched_at: datetime, source_url: str | None = None) -> list[Condition]:
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"stats.txt: not JSON: {one_line(exc, 80)}") from None
    if not isinstance(obj, dict):
        raise ParseError("stats.txt: not a JSON object")
    labels_raw = obj.get("gridstatus", obj.get("gridStatus"))
    if isinstance(labels_raw, str):
        labels_raw = [labels_raw]
    if not isinstance(labels_raw, list) or not labels_raw or not all(
            isinstance(x, str) and x.strip() for x in labels_raw):
        raise ParseError("stats.txt: gridstatus missing or not a list of labels")
    labels = tuple(" ".join(x.split()) for x in labels_raw)
    kinds: list[str] = []
    severity = Severity.INFO
    for label in labels:
        kind, sev = label_kind(label)
        if kind is not None and kind not in kinds:
            kinds.append(kind)
        severity = max(severity, sev)
    as_of = _pacific_time(obj.get("slotDate"), "slotDate")
    for field, stamp in (("slotDate", as_of), ("CurrentSystemDemandTS", _pacific_time(
            obj.get("CurrentSystemDemandTS"), "CurrentSystemDemandTS"))):
        if stamp is not None and fetched_at - stamp > STALE_AFTER:
            raise ParseError(f"stats.txt: stale: {field} {stamp.isoformat()} at the fetch "
                             f"{fetched_at.isoformat()}", reason="stale")
    tomorrow = _num(obj, "tomorrowsForecastPeakDemand")
    unloaded = _num(obj, "Available_capacity", "AvailableCapacity")
    attributes = StatusAttributes(
        as_of=as_of,
        grid_status=labels,
        label_kinds=tuple(kinds),
        current_reserve_mw=_num(obj, "Current_reserve", "CurrentReserve"),
        required_reserve_mw=_num(obj, "Required_reserve", "RequiredReserve"),
        current_demand_mw=_num(obj, "CurrentSystemDemand"),
        todays_peak_mw=_num(obj, "TodaysPeakDemand"),
        todays_peak_at=_pacific_time(obj.get("TodaysPeakDemandTS"), "TodaysPeakDemandTS"),
        todays_forecast_peak_mw=_num(obj, "todayForecastPeakDemand"),
        todays_forecast_peak_at=_pacific_time(obj.get("todayForecastPeakDemandTS"),
                                              "todayForecastPeakDemandTS"),
        # The page hides a 0 forecast: it means "not published", not a 0 MW peak.
        tomorrows_forecast_peak_mw=tomorrow if tomorrow else None,
        available_capacity_mw=unloaded,
    )
    return [Condition(
        id=CONDITION_ID, kind=Kind.CAISO_STATUS, severity=severity, status=Status.ACTIVE,
        window=Window(), regions=("CAISO Grid",), attributes=attributes, revision=0,
        observed_at=fetched_at, source_url=source_url)]


class StatsSource(SingleUrlSource):
    """`current/stats.txt`, 60-90 s after each 5-minute mark; its one condition, `caiso.status`,
    is always there."""

    name = "caiso-stats"

    def __init__(self, outlook_url: str) -> None:
        super().__init__(outlook_file(outlook_url, "stats.txt"),
                         Schedule(interval_s=300, offset_s=60, jitter_s=30), parse)
