"""CAISO Flex Alert API (JSON, or XML on request) -> `caiso.flex_alert` conditions.

`Active` alerts are `active`, `Future` alerts `scheduled`; the listing is complete, so an alert
that disappears has `ended` (gone after its EndDate) or was `cancelled` (gone before it). Dates
come as `MM-DD-YYYY HH:MM[:SS]` Pacific or ISO 8601 (the 2024 relaunch); regions as one string
split on `;` or `,`, legacy names normalized (`Statewide` -> `CAISO Grid`). The condition id is
`caiso.flex:<ID>`: the API's ID is stable for an alert's lifetime.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lxml import etree

from monitor.attributes import NoticeAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Kind, Status, Window
from monitor.topics import CAISO
from producers.caiso_common import FLEX_SEVERITY, one_line, pacific, split_regions
from producers.source import Fetcher, PollResult, Schedule

_FORMATS = ("%m-%d-%Y %H:%M", "%m-%d-%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p")


def flex_time(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f"flex alert: {field} missing")
    text = value.strip()
    for fmt in _FORMATS:
        try:
            return pacific(datetime.strptime(text, fmt))  # noqa: DTZ007 - Pacific wall clock
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(f"flex alert: {field} is not a known date form: {text[:40]!r}") from None
    return pacific(parsed) if parsed.tzinfo is None else parsed


def _xml_document(raw: bytes) -> dict[str, Any]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"flex alert: bad XML: {one_line(exc, 80)}") from None

    def local(el: Any) -> str:
        tag = el.tag
        return tag.split("}", 1)[1] if isinstance(tag, str) and "}" in tag else str(tag)

    doc: dict[str, Any] = {}
    for child in root:
        name = local(child)
        if name in ("Active", "Future"):
            doc[name] = [{local(f): (f.text or "").strip() for f in item} for item in child]
        else:
            doc[name] = (child.text or "").strip()
    if "IsFlexAlertActive" in doc:
        doc["IsFlexAlertActive"] = {"true": True, "false": False}.get(
            str(doc["IsFlexAlertActive"]).lower(), doc["IsFlexAlertActive"])
    return doc


def _document(raw: bytes) -> dict[str, Any]:
    head = raw.lstrip()[:1]
    if head == b"<":
        return _xml_document(raw)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"flex alert: neither JSON nor XML: {one_line(exc, 60)}") from None
    if not isinstance(doc, dict):
        raise ParseError("flex alert: not a JSON object")
    return doc


def _alert(item: object, listed: str, fetched_at: datetime, url: str | None) -> Condition:
    if not isinstance(item, dict):
        raise ParseError(f"flex alert: {listed} entry is not an object")
    raw_id = item.get("ID", item.get("Id"))
    try:
        alert_id = int(str(raw_id).strip())
    except ValueError:
        raise ParseError(f"flex alert: {listed} entry without a numeric ID") from None
    start = flex_time(item.get("StartDate"), "StartDate")
    end = flex_time(item.get("EndDate"), "EndDate")
    if end < start:
        raise ParseError(f"flex alert {alert_id}: EndDate before StartDate")
    region = item.get("Region")
    regions = split_regions(region) if isinstance(region, str) else ()
    title = item.get("Title")
    return Condition(
        id=f"caiso.flex:{alert_id}", kind=Kind.CAISO_FLEX_ALERT, severity=FLEX_SEVERITY,
        status=Status.ACTIVE if listed == "Active" else Status.SCHEDULED,
        window=Window(start=start, end=end), regions=regions or ("CAISO Grid",),
        attributes=NoticeAttributes(flex_alert_id=alert_id, channel="flex_api",
                                    title=title.strip() if isinstance(title, str) else None),
        revision=0, observed_at=fetched_at, source_url=url)


def parse(raw: bytes, fetched_at: datetime, source_url: str | None = None) -> list[Condition]:
    doc = _document(raw)
    for key in ("Active", "Future"):
        if key not in doc:
            raise ParseError(f"flex alert: {key} list missing")
        if not isinstance(doc[key], list):
            raise ParseError(f"flex alert: {key} is not a list")
    flag = doc.get("IsFlexAlertActive")
    if not isinstance(flag, bool):
        raise ParseError("flex alert: IsFlexAlertActive missing or not a boolean")
    if flag != bool(doc["Active"]):
        # Contradictory answers are not "all clear": let the engine count and retry.
        raise ParseError("flex alert: IsFlexAlertActive disagrees with the Active list")
    conditions: dict[str, Condition] = {}
    for listed in ("Future", "Active"):  # Active wins if an ID is in both
        for item in doc[listed]:
            c = _alert(item, listed, fetched_at, source_url)
            conditions[c.id] = c
    return list(conditions.values())


class FlexSource:
    """Every 60 s; a conditional request where the API supports it, else the cache-buster."""

    name = "caiso-flex"
    topic = CAISO

    def __init__(self, url: str) -> None:
        self.url = url
        self.schedule = Schedule(interval_s=60, offset_s=0, jitter_s=5)

    async def poll(self, fetch: Fetcher, now: datetime) -> PollResult:
        resp = await fetch.get(self.url, headers={"Accept": "application/json"},
                               conditional=True, cache_bust=True)
        if resp.not_modified:
            return PollResult(unchanged=True)
        conditions = parse(resp.body, resp.fetched_at or now, source_url=self.url)
        return PollResult(conditions=tuple(conditions), complete=True)

    def disappeared(self, last: Condition, now: datetime) -> Condition:
        """No history: gone after its end has ended; gone earlier was withdrawn."""
        end = last.window.end
        if end is not None and now >= end:
            status, window = Status.ENDED, last.window
        elif last.window.start is not None and now >= last.window.start:
            status, window = Status.ENDED, Window(start=last.window.start, end=now)
        else:
            status, window = Status.CANCELLED, last.window
        return last.model_copy(update={"status": status, "window": window, "observed_at": now,
                                       "revision": 0})
