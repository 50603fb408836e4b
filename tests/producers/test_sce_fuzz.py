"""Fuzzing the SCE parsers: whatever arrives, the only exception is ParseError, and a damaged
response never reads as fewer events ("no events" is the most dangerous wrong answer)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from producers.sce_api import CATEGORIES, parse_event_store, parse_last_update
from producers.sce_history import history_conditions
from producers.sce_html import parse_status_page
from tests.producers.sce_site import SITE_DIR

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

STORE = (SITE_DIR / "event_store_2010-09-27_transmission_emergency.synthetic.json").read_bytes()
PAGE = (SITE_DIR / "status_commercial_2010-09-27_transmission_emergency.synthetic.html"
        ).read_bytes()
STORE_EVENTS = sum(len(v) for v in parse_event_store(STORE).events.values())
PAGE_EVENTS = len(parse_status_page(PAGE).events)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
EVENT_FIELDS = ["eventKey", "uuid", "program", "product", "startDate", "endDate", "startTime",
                "endTime", "ir", "startDateTime", "endDateTime", "active", "issueTime",
                "locationType", "locationNumber", "locationBlock", "locations", "zipCodes",
                "estimated", "tbdFlag", "aggNames"]
time_like = st.sampled_from(["TBD", "", "04:00PM", "4:00 PM", "16:00", "25:00", "12:00AM",
                             "00:00PM", "09/27/2010", "2010-09-27", "13/45/2010", "1e400",
                             "1285625760000", "-99999999999999999"])


def _only_parse_errors(fn: Any, raw: bytes) -> Any:
    try:
        return fn(raw)
    except ParseError:
        return None


@FUZZ
@given(st.binary(max_size=2000))
def test_json_parsers_on_arbitrary_bytes(raw: bytes) -> None:
    _only_parse_errors(parse_event_store, raw)
    _only_parse_errors(parse_last_update, raw)


@FUZZ
@given(json_values)
def test_json_parsers_on_arbitrary_json(value: Any) -> None:
    for body in (value, {"eventStore": value}, {"eventStore": {"events": value}},
                 {"eventStore": {"events": {"map": value}}},
                 {"eventStore": {"events": {"map": {CATEGORIES[0]: value}}}}):
        raw = json.dumps(body).encode()
        _only_parse_errors(parse_event_store, raw)
        _only_parse_errors(parse_last_update, raw)


@FUZZ
@given(st.data())
def test_damaged_event_is_an_error_or_still_an_event(data: st.DataObject) -> None:
    doc = json.loads(STORE)
    mapped = doc["eventStore"]["events"]["map"]
    cat = data.draw(st.sampled_from(sorted(mapped)))
    events = mapped[cat] if isinstance(mapped[cat], list) else [mapped[cat]]
    event = data.draw(st.sampled_from(events))
    damaged = copy.deepcopy(event)
    for _ in range(data.draw(st.integers(1, 3))):
        field = data.draw(st.sampled_from(EVENT_FIELDS))
        if data.draw(st.booleans()):
            damaged.pop(field, None)
        else:
            damaged[field] = data.draw(json_values | time_like)
    events[events.index(event)] = damaged
    if not isinstance(mapped[cat], list):
        mapped[cat] = damaged
    parsed = _only_parse_errors(parse_event_store, json.dumps(doc).encode())
    if parsed is not None:
        assert sum(len(v) for v in parsed.events.values()) == STORE_EVENTS


@FUZZ
@given(st.binary(max_size=3000))
def test_html_parser_on_arbitrary_bytes(raw: bytes) -> None:
    _only_parse_errors(parse_status_page, raw)
    _only_parse_errors(parse_status_page, raw + b"</html>")


@FUZZ
@given(st.integers(0, len(PAGE) - len(b"</html>\n")))
def test_truncated_page_is_always_an_error(cut: int) -> None:
    assert _only_parse_errors(parse_status_page, PAGE[:cut]) is None


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(PAGE) - 1), st.binary(min_size=1, max_size=3)),
                min_size=1, max_size=5))
def test_corrupted_page_never_crashes(edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(PAGE)
    for at, junk in edits:
        raw[at:at + len(junk)] = junk
    _only_parse_errors(parse_status_page, bytes(raw))


@FUZZ
@given(st.sampled_from(["<td>", "</td>", "<tr", "</tr>", "<caption>", "<th>", "<h3>",
                        "In Progress", "<table"]), st.integers(0, 40))
def test_removed_markup_is_an_error_or_keeps_every_event(token: str, nth: int) -> None:
    text = PAGE.decode()
    positions = [i for i in range(len(text)) if text.startswith(token, i)]
    if not positions:
        return
    at = positions[nth % len(positions)]
    damaged = (text[:at] + text[at + len(token):]).encode()
    parsed = _only_parse_errors(parse_status_page, damaged)
    if parsed is not None:
        # Dropping a row's opening tag merges cells (an error) or nothing at all; it may
        # never make an event vanish silently.
        assert len(parsed.events) >= PAGE_EVENTS


@FUZZ
@given(st.binary(max_size=2000))
def test_history_parser_on_arbitrary_bytes(raw: bytes) -> None:
    _only_parse_errors(history_conditions, raw)
    header = (b"Program,Product,Dipsatch Type,Dispatch Location,Event Start Date,"
              b"Event Start Time,Event End Date,Event End Time,Comments\r\n")
    _only_parse_errors(history_conditions, header + raw)


def test_every_single_markup_removal_is_an_error_or_keeps_every_event() -> None:
    """Exhaustive companion of the test above: each occurrence of each structural token."""
    text = PAGE.decode()
    tokens = ["<td>", "</td>", "<tr", "</tr>", "<caption>", "</caption>", "<th>", "</th>",
              "<h3>", "</h3>", "In Progress", "<table", "</table>", "<tbody>", "<thead>",
              "</div>", "<div", "Active Events", "Scheduled Events"]
    tried = 0
    for token in tokens:
        at = text.find(token)
        while at != -1:
            damaged = (text[:at] + text[at + len(token):]).encode()
            parsed = _only_parse_errors(parse_status_page, damaged)
            assert parsed is None or len(parsed.events) >= PAGE_EVENTS, (token, at)
            tried += 1
            at = text.find(token, at + 1)
    assert tried > 200
