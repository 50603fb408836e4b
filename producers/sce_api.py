"""SCE's mobile JSON API (`<host>/m.dr.website/resteasy/services/`): pure parsers.

The shape is the one the site's own code documents (JAXB classes and the mobile client script,
2012-2014); no live response has been captured (docs/sources-sce.md). Two resources matter:

- `getLastUpdateTime?category=C&category=C...`: epoch milliseconds of the last change per
  category, the cheap check made every poll;
- `getEventStore?rtp=false&categoryNames=C...`: `eventStore.events.map` (category -> list of
  events) and `eventStore.lastUpdateTime.item` (category -> epoch ms).

Categories are `{PROGRAM}_{RESIDENTIAL|COMMERCIAL}_{ACTIVE|SCHEDULED}`. The JSON comes from
JAXB through Jettison's "mapped" convention, which writes a one-element list as a bare object
and may write booleans and numbers as strings; both are accepted. Anything else out of shape
is a ParseError for the whole response: one unreadable event must not read as "gone".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.errors import ParseError
from monitor.events import Condition
from producers.dr_events import DrEvent, conditions_of
from producers.sce_locations import is_all, normalize_location_type, resolve
from producers.sce_programs import is_test, notice_of_product, program_for
from producers.sce_values import (
    ValueFormatError,
    from_epoch_ms,
    is_tbd,
    local_from,
)

SCE_TAC = "SCE-TAC"

# The 16 categories the site publishes (the catalog in docs/sources-sce.md).
_PROGRAM_CLASSES = (("SAI", "RESIDENTIAL"), ("SPD", "RESIDENTIAL"), ("SDP", "RESIDENTIAL"),
                    ("API", "COMMERCIAL"), ("CBP", "COMMERCIAL"), ("DBP", "COMMERCIAL"),
                    ("SDP", "COMMERCIAL"), ("BIP", "COMMERCIAL"))
CATEGORIES: tuple[str, ...] = tuple(
    f"{p}_{c}_{state}" for p, c in _PROGRAM_CLASSES for state in ("ACTIVE", "SCHEDULED"))
_CATEGORY = re.compile(r"^([A-Z0-9-]+)_(RESIDENTIAL|COMMERCIAL)_(ACTIVE|SCHEDULED)$")

MAX_EVENTS_PER_CATEGORY = 5000


@dataclass(frozen=True)
class EventStore:
    events: Mapping[str, tuple[DrEvent, ...]]  # category -> events
    last_update: Mapping[str, int]  # category -> epoch ms


def _load(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ParseError("response is not UTF-8 text", reason="encoding") from None
    except (json.JSONDecodeError, RecursionError):
        raise ParseError("response is not JSON", reason="syntax") from None


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]  # Jettison: a one-element list is written as the element itself


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return _text(value) is not None and str(value).strip().lower() in ("true", "1", "y", "yes")


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings, a comma-separated string, or one value."""
    out: list[str] = []
    for item in _as_list(value):
        text = _text(item)
        if text is None:
            continue
        out.extend(part.strip() for part in text.split(",") if part.strip())
    return tuple(dict.fromkeys(out))


def _epoch_map(value: Any, what: str) -> dict[str, int]:
    if isinstance(value, dict) and "item" in value:
        value = value["item"]
    if isinstance(value, dict) and "entry" in value:  # JAXB's default map form
        value = {(_text(e.get("key")) if isinstance(e, dict) else None):
                 (e.get("value") if isinstance(e, dict) else None)
                 for e in _as_list(value["entry"])}
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"{what} is not a map of category to time", reason="shape")
    out: dict[str, int] = {}
    for cat, ms in value.items():
        if not isinstance(cat, str) or not _CATEGORY.match(cat):
            raise ParseError(f"{what}: unknown category {str(cat)[:60]!r}", reason="shape")
        if ms is None or ms == "":
            continue
        try:
            if isinstance(ms, bool):
                raise TypeError("a boolean is not a time")
            out[cat] = int(float(ms))
        except (TypeError, ValueError, OverflowError):
            raise ParseError(f"{what}: bad time {str(ms)[:40]!r} for {cat}",
                             reason="shape") from None
    return out


def parse_last_update(raw: bytes) -> dict[str, int]:
    """`getLastUpdateTime`: category -> epoch ms (a category never updated may be absent)."""
    data = _load(raw)
    if isinstance(data, dict) and "eventStore" in data and isinstance(data["eventStore"], dict):
        data = data["eventStore"]
    if isinstance(data, dict) and "lastUpdateTime" in data:
        data = data["lastUpdateTime"]
    if not isinstance(data, dict):
        raise ParseError("getLastUpdateTime: not a JSON object", reason="shape")
    return _epoch_map(data, "getLastUpdateTime")


def parse_event_store(raw: bytes, url: str | None = None) -> EventStore:
    """`getEventStore`: every event of the categories asked for, normalized."""
    data = _load(raw)
    store = data.get("eventStore") if isinstance(data, dict) else None
    if not isinstance(store, dict):
        raise ParseError("getEventStore: no eventStore object", reason="shape")
    events_obj = store.get("events")
    if isinstance(events_obj, dict) and "map" in events_obj:
        events_obj = events_obj["map"]
    elif events_obj not in (None, ""):
        # Present but not the documented {"map": {...}}: a changed format, not "no events".
        raise ParseError("getEventStore: events is not {map: ...}", reason="shape")
    if events_obj in (None, ""):
        if "events" not in store:
            raise ParseError("getEventStore: eventStore has no events", reason="shape")
        events_obj = {}
    if not isinstance(events_obj, dict):
        raise ParseError("getEventStore: events.map is not an object", reason="shape")
    events: dict[str, tuple[DrEvent, ...]] = {}
    for cat, items in events_obj.items():
        m = _CATEGORY.match(cat) if isinstance(cat, str) else None
        if m is None:
            raise ParseError(f"getEventStore: unknown category {str(cat)[:60]!r}",
                             reason="shape")
        listed = _as_list(items)
        if len(listed) > MAX_EVENTS_PER_CATEGORY:
            raise ParseError(f"getEventStore: {len(listed)} events in {cat}", reason="size")
        parsed = []
        for i, item in enumerate(listed):
            if not isinstance(item, dict):
                raise ParseError(f"getEventStore: {cat}[{i}] is not an object", reason="shape")
            try:
                parsed.append(event_from_json(item, m.group(1), m.group(2), m.group(3), url))
            except ValueFormatError as exc:
                raise ParseError(f"getEventStore: {cat}[{i}]: {exc}", reason="value") from None
        events[cat] = tuple(parsed)
    last = _epoch_map(store.get("lastUpdateTime"), "eventStore.lastUpdateTime")
    return EventStore(events=events, last_update=last)


def _when(item: Mapping[str, Any], which: str) -> tuple[object, bool]:
    """(datetime or None, is TBD) for `start` or `end`: date+time text first, epoch ms next."""
    date_text = _text(item.get(f"{which}Date"))
    time_text = _text(item.get(f"{which}Time"))
    if is_tbd(time_text) or is_tbd(date_text):
        return None, True
    if date_text and time_text:
        return local_from(date_text, time_text), False
    epoch = item.get(f"{which}DateTime")
    if _text(epoch) is not None:
        return from_epoch_ms(epoch), False
    return None, False


def event_from_json(item: Mapping[str, Any], program_code: str, customer_class: str,
                    state: str, url: str | None) -> DrEvent:
    code = _text(item.get("program")) or program_code
    program = program_for(code)
    product = _text(item.get("product"))
    start, _ = _when(item, "start")
    if start is None:
        raise ValueFormatError("event without a start")
    end, tbd = _when(item, "end")
    if _flag(item.get("tbdFlag")):
        end, tbd = None, True
    assert start is None or isinstance(start, datetime)
    assert end is None or isinstance(end, datetime)
    if end is not None and start is not None and end < start:
        raise ValueFormatError(f"end {end} before start {start}")
    ltype = normalize_location_type(_text(item.get("locationType")) or _text(item.get("blockType")))
    locations = _strings(item.get("locations")) or _strings(item.get("locationNumber"))
    blocks: tuple[str, ...] = ()
    if ltype == "BLOCK" or _text(item.get("locationBlock")):
        blocks = (_strings(item.get("locationBlock")) or locations)
        blocks = tuple(b.upper() for b in blocks if not is_all(b))
        locations = locations or blocks
    zips = _strings(item.get("zipCodes"))
    geo = resolve(ltype, locations, zips)
    ir = item.get("ir")
    issued = _text(item.get("issueTime"))
    comments = _text(item.get("eventName"))
    return DrEvent(
        utility="SCE",
        program=program.code,
        product=product,
        severity=program.severity,
        interruptible=_flag(ir) if ir is not None and _text(ir) else program.interruptible,
        customer_class="residential" if customer_class == "RESIDENTIAL" else "commercial",
        listed="active" if state == "ACTIVE" else "scheduled",
        start=start,
        end=end,
        estimated_end=_flag(item.get("estimated")) and not tbd,
        event_key=_text(item.get("eventKey")),
        uuid=_text(item.get("uuid")),
        location_type=ltype,
        locations=locations,
        blocks=blocks,
        sublaps=geo.sublaps,
        zips=geo.zips,
        location_resolved=geo.resolved,
        regions=(SCE_TAC,),
        issued_at=from_epoch_ms(issued) if issued and issued.lstrip("-").isdigit() else None,
        notice=notice_of_product(product),
        aggregators=_strings(item.get("aggNames")),
        test_event=is_test(comments),
        source_url=url,
        channel="json",
    )


def parse_event_store_conditions(raw: bytes, fetched_at: datetime) -> list[Condition]:
    """`capmon parse sce-dr-json`: a saved getEventStore response as conditions."""
    store = parse_event_store(raw)
    events = [ev for cat in sorted(store.events) for ev in store.events[cat]]
    return conditions_of(events, fetched_at, observed_at=fetched_at)
