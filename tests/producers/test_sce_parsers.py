"""The SCE JSON API and status-page parsers, on the synthetic fixtures built from real episodes.

The fixtures (tests/fixtures/sce/site/*.synthetic.*) are constructed in the documented shape:
no live response of SCE's site has ever been captured (see the README there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.attributes import DrEventAttributes
from monitor.errors import ParseError
from monitor.events import Condition, Severity, Status
from producers.dr_events import closed, conditions_of
from producers.sce_api import CATEGORIES, parse_event_store, parse_event_store_conditions
from producers.sce_html import parse_list_view, parse_status_page, parse_status_page_conditions
from producers.sce_locations import ALL_SUBLAPS
from producers.sce_programs import PROGRAMS, program_for_heading
from producers.sce_values import PACIFIC
from tests.producers import sce_site
from tests.producers.sce_site import SCENARIOS, SITE_DIR, fetched_at, scenario_files

ROOT = Path(__file__).resolve().parents[2]


def site(name: str) -> bytes:
    return (SITE_DIR / name).read_bytes()


def pt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=PACIFIC)


def json_conditions(scenario: str, at: datetime | None = None) -> dict[str, Condition]:
    raw = site(f"event_store_{scenario}.synthetic.json")
    cs = parse_event_store_conditions(raw, at or fetched_at(scenario))
    return {c.id: c for c in cs}


def html_conditions(scenario: str, at: datetime | None = None) -> dict[str, Condition]:
    out: dict[str, Condition] = {}
    for tab in ("residential", "commercial"):
        raw = site(f"status_{tab}_{scenario}.synthetic.html")
        for c in parse_status_page_conditions(raw, at or fetched_at(scenario)):
            out[c.id] = c
    return out


def attrs(c: Condition) -> DrEventAttributes:
    assert isinstance(c.attributes, DrEventAttributes)
    return c.attributes


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_committed_fixtures_are_the_renderings_of_their_scenario(scenario: str) -> None:
    for name, content in scenario_files(scenario).items():
        assert site(name) == content, f"{name} is stale: python -m tests.producers.sce_site"


# -- JSON ---------------------------------------------------------------------------------------

def test_transmission_emergency_day_every_program_in_local_time() -> None:
    cs = json_conditions("2010-09-27_transmission_emergency")
    api = cs["sce.dr:API-20100927-1516"]
    assert (api.status, api.severity) == (Status.ACTIVE, Severity.EMERGENCY)
    assert api.window.start == pt("2010-09-27 15:16")
    assert api.window.start.isoformat() == "2010-09-27T15:16:00-07:00"
    assert api.window.end is None  # TBD
    assert attrs(api).program == "AP-I" and attrs(api).interruptible
    assert set(api.regions) == {"SCE-TAC", *ALL_SUBLAPS}
    aps = cs["sce.dr:APS-20100927-1516"]
    assert (attrs(aps).program, attrs(aps).product, aps.severity) == ("SDP", "APS",
                                                                     Severity.WARNING)
    assert attrs(aps).location_type == "SUBSTATION" and attrs(aps).uuid == "uuid-APS-20100927-1516"
    cpp = cs["sce.dr:SAI-20100927-1"]
    assert (attrs(cpp).program, attrs(cpp).customer_class, cpp.severity) == (
        "CPP", "residential", Severity.WARNING)
    assert not attrs(cpp).interruptible
    assert attrs(cpp).issued_at == pt("2010-09-26 15:00")
    cbp = cs["sce.dr:CBP-1-4-DA-20100927"]
    assert (attrs(cbp).program, attrs(cbp).notice, cbp.window.end) == (
        "CBP", "day_ahead", pt("2010-09-27 18:00"))
    dbp = cs["sce.dr:DBP-DA-20100927"]
    assert (dbp.severity, attrs(dbp).interruptible) == (Severity.ADVISORY, False)
    assert len(cs) == 7
    assert all(c.status is Status.ACTIVE for c in cs.values())


def test_bip_blocks_scheduled_then_active_when_their_start_passes() -> None:
    before = json_conditions("2011-09-21_bip_blocks")
    bips = {k: c for k, c in before.items() if attrs(c).program == "BIP"}
    assert {attrs(c).blocks for c in bips.values()} == {("P",), ("Q",), ("R",), ("T",)}
    assert {attrs(c).product for c in bips.values()} == {"BIP-30", "BIP-15"}
    assert all(c.status is Status.SCHEDULED and c.severity is Severity.EMERGENCY
               for c in bips.values())
    assert all(c.window.start == pt("2011-09-21 14:00") and c.window.end == pt(
        "2011-09-21 16:00") for c in bips.values())
    # BIP block letters are not places: the whole territory, flagged unresolved.
    assert all(not attrs(c).location_resolved and attrs(c).sublaps == ALL_SUBLAPS
               for c in bips.values())
    # Still listed under "Scheduled Events" at 14:00:30: its start has passed, so it is active.
    after = json_conditions("2011-09-21_bip_blocks", pt("2011-09-21 14:00") + timedelta(
        seconds=30))
    assert all(after[k].status is Status.ACTIVE for k in bips)


def test_one_minute_event_is_emitted_and_ends_when_it_leaves() -> None:
    during = json_conditions("2009-09-30_one_minute", pt("2009-09-30 08:53") + timedelta(
        seconds=20))
    assert len(during) == 2
    for c in during.values():
        assert c.status is Status.ACTIVE and attrs(c).estimated_end
        assert c.window.end - c.window.start == timedelta(minutes=1)  # type: ignore[operator]
    # An SDP end is an estimate: while still listed after it, the event is still running.
    late = pt("2009-09-30 08:55")
    after = json_conditions("2009-09-30_one_minute", late)
    assert all(c.status is Status.ACTIVE for c in after.values())
    # Once it leaves the list, it ended at the end it had announced.
    for c in after.values():
        gone = closed(c, late)
        assert gone.status is Status.ENDED and gone.window.end == pt("2009-09-30 08:54")
        assert not attrs(gone).end_inferred


def test_firm_end_passing_while_listed_ends_the_event() -> None:
    raw = _store("CBP_COMMERCIAL_ACTIVE", _event())
    (c,) = parse_event_store_conditions(raw, pt("2010-08-24 17:00"))
    assert c.status is Status.ENDED and c.window.end == pt("2010-08-24 17:00")


def test_single_substation_event_maps_to_its_sublaps_and_zips() -> None:
    (c,) = json_conditions("2010-07-28_substation_test").values()
    a = attrs(c)
    assert (a.location_type, a.locations, a.location_resolved) == ("SUBSTATION", ("8347",), True)
    assert "SCEC" in a.sublaps and set(a.sublaps) < set(ALL_SUBLAPS)
    assert {"92592", "92590", "92536"} <= set(a.zips)
    assert set(c.regions) == {"SCE-TAC", *a.sublaps, *a.zips}
    assert c.window.end - c.window.start == timedelta(minutes=25)  # type: ignore[operator]


def test_cpp_day_ahead_is_scheduled_the_day_before() -> None:
    (c,) = json_conditions("2010-08-23_cpp_day_ahead").values()
    assert c.status is Status.SCHEDULED
    assert c.window.start == pt("2010-08-24 14:00")
    assert attrs(c).issued_at == pt("2010-08-23 15:00")


def _event(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"eventKey": "k1", "uuid": "u1", "program": "CBP",
                            "product": "CBP 1-4 DO", "startDate": "08/24/2010",
                            "startTime": "02:00PM", "endDate": "08/24/2010",
                            "endTime": "05:00PM", "locationType": "ALL"}
    base.update(over)
    return base


def _store(cat: str, *events: dict[str, Any]) -> bytes:
    return json.dumps({"eventStore": {"events": {"map": {cat: list(events)}},
                                      "lastUpdateTime": {"item": {cat: 1}}}}).encode()


PRODUCTS = [
    ("SAI_RESIDENTIAL", "SAI", "CPP", "CPP", Severity.WARNING, False, "residential"),
    ("SAI_RESIDENTIAL", "SAI", "CPP Large", "CPP", Severity.WARNING, False, "residential"),
    ("SPD_RESIDENTIAL", "SPD", "SPD", "SPD", Severity.WARNING, False, "residential"),
    ("SDP_RESIDENTIAL", "SDP", "SDP", "SDP", Severity.WARNING, True, "residential"),
    ("SDP_COMMERCIAL", "SDP", "APS", "SDP", Severity.WARNING, True, "commercial"),
    ("SDP_COMMERCIAL", "SDP", "APS-E", "SDP", Severity.WARNING, True, "commercial"),
    ("API_COMMERCIAL", "API", "API", "AP-I", Severity.EMERGENCY, True, "commercial"),
    *[("CBP_COMMERCIAL", "CBP", p, "CBP", Severity.WARNING, True, "commercial")
      for p in ("CBP 1-4 DO", "CBP 2-6 DO", "CBP 4-8 DO", "CBP 1-4 DA", "CBP 2-6 DA",
                "CBP 4-8 DA")],
    ("DBP_COMMERCIAL", "DBP", "DBP DA", "DBP", Severity.ADVISORY, False, "commercial"),
    *[("BIP_COMMERCIAL", "BIP", p, "BIP", Severity.EMERGENCY, True, "commercial")
      for p in ("BIP-15", "BIP-30", "TOU-BIP", "BIP2013", "I6-15", "I6-30")],
    # Today's programs, should the site add categories for them.
    ("SEP_RESIDENTIAL", "SEP", "SEP", "SEP", Severity.WARNING, True, "residential"),
    ("ELRP_COMMERCIAL", "ELRP", "ELRP", "ELRP", Severity.WARNING, False, "commercial"),
]


@pytest.mark.parametrize(("cat", "code", "product", "program", "severity", "ir", "klass"),
                         PRODUCTS)
def test_every_program_and_product(cat: str, code: str, product: str, program: str,
                                   severity: Severity, ir: bool, klass: str) -> None:
    raw = _store(f"{cat}_SCHEDULED", _event(program=code, product=product, ir=None))
    (c,) = parse_event_store_conditions(raw, datetime(2010, 8, 24, 12, tzinfo=UTC))
    a = attrs(c)
    assert (a.program, a.product, c.severity, a.interruptible, a.customer_class) == (
        program, product, severity, ir, klass)
    assert c.status is Status.SCHEDULED
    if "DA" in product.split():
        assert a.notice == "day_ahead"
    if "DO" in product.split():
        assert a.notice == "day_of"


def test_the_sixteen_categories() -> None:
    assert len(CATEGORIES) == 16 and len(set(CATEGORIES)) == 16


def test_jettison_quirks_bare_object_lists_and_string_booleans() -> None:
    raw = json.dumps({"eventStore": {"events": {"map": {
        "SDP_COMMERCIAL_ACTIVE": _event(program="SDP", product="APS", endTime="TBD",
                                        endDate="TBD", estimated="false", ir="true",
                                        locationType="District", locations="All")}}}}).encode()
    (ev,) = parse_event_store(raw).events["SDP_COMMERCIAL_ACTIVE"]
    assert ev.end is None and ev.interruptible and ev.listed == "active"
    assert ev.location_type == "DISTRICT" and ev.sublaps == ALL_SUBLAPS


def test_epoch_times_used_when_text_times_are_missing() -> None:
    ms = int(pt("2010-08-24 14:00").timestamp() * 1000)
    raw = _store("CBP_COMMERCIAL_ACTIVE", _event(startDate=None, startTime=None,
                                                 startDateTime=ms, endDate=None, endTime=None,
                                                 endDateTime=str(ms + 3_600_000)))
    (ev,) = parse_event_store(raw).events["CBP_COMMERCIAL_ACTIVE"]
    assert ev.start == pt("2010-08-24 14:00") and ev.end == pt("2010-08-24 15:00")


def test_empty_store_is_no_events_but_missing_structure_is_an_error() -> None:
    ok = json.dumps({"eventStore": {"events": {"map": {}}}}).encode()
    assert parse_event_store_conditions(ok, datetime(2010, 1, 1, tzinfo=UTC)) == []


@pytest.mark.parametrize("raw", [
    b"", b"<html>Service Unavailable</html>", b"[]", b'{"eventStore": null}',
    b'{"eventStore": {}}', b'{"eventStore": {"events": []}}',
    b'{"eventStore": {"events": {"map": []}}}',
    b'{"eventStore": {"events": {"map": {"NOT A CATEGORY": []}}}}',
    _store("CBP_COMMERCIAL_ACTIVE", _event(startDate=None, startTime=None)),
    _store("CBP_COMMERCIAL_ACTIVE", _event(startDate="24/08/2010")),
    _store("CBP_COMMERCIAL_ACTIVE", _event(startTime="25:00")),
    _store("CBP_COMMERCIAL_ACTIVE", _event(endTime="01:00PM")),  # ends before it starts
    _store("CBP_COMMERCIAL_ACTIVE", "not an event"),  # type: ignore[arg-type]
    b'\xff\xfe{"eventStore"',
], ids=lambda r: r[:40].decode("latin-1"))
def test_malformed_json_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_event_store(raw)


# -- HTML ---------------------------------------------------------------------------------------

COMPARED = ("program", "customer_class", "interruptible", "blocks", "sublaps")


def _comparable(c: Condition) -> tuple[object, ...]:
    a = attrs(c)
    return (c.kind, c.severity, c.status, c.window, c.regions,
            *(getattr(a, f) for f in COMPARED))


@pytest.mark.parametrize("scenario", ["2010-09-27_transmission_emergency",
                                      "2011-09-21_bip_blocks", "2009-09-30_one_minute",
                                      "2010-08-23_cpp_day_ahead"])
def test_json_and_html_give_the_same_conditions(scenario: str) -> None:
    from_json = json_conditions(scenario)
    from_html = html_conditions(scenario)
    assert len(from_json) == len(from_html)
    # Rows with a List link carry the site's eventKey: the same id as the API's.
    linked = {cid: h for cid, h in from_html.items() if attrs(h).event_key}
    for cid, h in linked.items():
        assert _comparable(h) == _comparable(from_json[cid])
        if attrs(h).product is not None:  # commercial SDP panels have no Product column
            assert attrs(h).product == attrs(from_json[cid]).product
    # Rows without one (the CPP and DBP panels) match on everything but the id.
    unlinked = [(*_comparable(h), attrs(h).product)
                for cid, h in from_html.items() if cid not in linked]
    rest = [(*_comparable(j), attrs(j).product)
            for cid, j in from_json.items() if cid not in linked]
    assert sorted(unlinked, key=repr) == sorted(rest, key=repr)


def test_html_without_a_location_covers_at_least_what_json_places() -> None:
    (j,) = json_conditions("2010-07-28_substation_test").values()
    (h,) = html_conditions("2010-07-28_substation_test").values()
    assert j.id == h.id
    assert set(attrs(j).sublaps) <= set(h.regions)
    assert not attrs(h).location_resolved


def test_html_page_class_and_panels() -> None:
    page = parse_status_page(site("status_commercial_2011-09-21_bip_blocks.synthetic.html"))
    assert page.customer_class == "commercial"
    assert page.programs == {"AP-I", "CBP", "DBP", "SDP", "BIP"}  # RTP lists prices, not events
    resi = parse_status_page(site("status_residential_2011-09-21_bip_blocks.synthetic.html"))
    assert resi.customer_class == "residential" and resi.events == ()


@pytest.mark.parametrize("program", [p for p in PROGRAMS])
def test_every_program_heading_is_recognized(program: Any) -> None:
    heading = f"{program.name} ({program.code})"
    assert program_for_heading(heading) is program


def _page(events: list[sce_site.SiteEvent]) -> str:
    return sce_site.status_page("COMMERCIAL", events, datetime(2011, 9, 21, 13, 50)).decode()


def test_header_count_must_match_the_active_table() -> None:
    page = _page(sce_site.episode_2011_09_21())
    assert "1 Event(s) in Progress" in page
    with pytest.raises(ParseError, match="in progress"):
        parse_status_page(page.replace("1 Event(s) in Progress", "2 Event(s) in Progress")
                          .encode())


@pytest.mark.parametrize(("old", "new"), [
    ("<caption>Scheduled Events</caption>", "<caption>Upcoming</caption>"),  # table missing
    ("<th>Start Date</th>", "<th>Begins</th>"),  # a column renamed
    ("<td>BIP-15</td>", ""),  # a cell lost
    ("<td>02:00PM</td>", "<td>2 o'clock</td>"),  # a time out of format
    ("</html>", ""),  # cut short
    ("<h3>", "<h4>"),  # panels no longer where they were
])
def test_malformed_pages_are_parse_errors_not_all_clear(old: str, new: str) -> None:
    page = _page(sce_site.episode_2011_09_21())
    assert old in page
    with pytest.raises(ParseError):
        parse_status_page(page.replace(old, new).encode())


def test_maintenance_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_status_page(b"<html><body><h1>Site under maintenance</h1></body></html>")


# -- capmon parse -----------------------------------------------------------------------------

def _capmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capmon.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_capmon_parse_prints_json_lines_and_rejects_garbage(tmp_path: Path) -> None:
    fixture = SITE_DIR / "event_store_2011-09-21_bip_blocks.synthetic.json"
    out = _capmon("parse", "sce-dr-json", str(fixture), "--fetched-at",
                  "2011-09-21T13:50:00-07:00")
    assert out.returncode == 0, out.stderr
    lines = [Condition.from_json(line) for line in out.stdout.splitlines()]
    assert {attrs(c).program for c in lines} == {"AP-I", "BIP"} and len(lines) == 5
    page = SITE_DIR / "status_commercial_2011-09-21_bip_blocks.synthetic.html"
    out = _capmon("parse", "sce-dr-html", str(page), "--fetched-at",
                  "2011-09-21T13:50:00-07:00")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 5
    bad = tmp_path / "bad.html"
    bad.write_bytes(b"<html><body>Access denied</body></html>")
    for source in ("sce-dr-json", "sce-dr-html", "sce-history"):
        out = _capmon("parse", source, str(bad))
        assert out.returncode == 1 and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_conditions_of_keeps_one_condition_per_id() -> None:
    events = list(parse_event_store(site(
        "event_store_2010-09-27_transmission_emergency.synthetic.json")).events.values())
    flat = [ev for evs in events for ev in evs]
    doubled = conditions_of(flat + flat, datetime(2010, 9, 27, 22, 20, tzinfo=UTC))
    assert len(doubled) == len(flat)


def test_list_view_gives_the_event_zip_codes() -> None:
    raw = site("listview_APS-E-20100728-8347.synthetic.html")
    assert parse_list_view(raw) == ("92592", "92590")
    assert parse_list_view(sce_site.list_view(None)) == ()  # "All locations"


@pytest.mark.parametrize("raw", [
    b"", b"<html><body>Session expired</body></html>",
    b"<html><body><table><tr><th>County</th><th>City</th><th>Zip Code</th></tr>"
    b"<tr><td>RIVERSIDE</td><td>TEMECULA</td><td>TBD</td></tr></table></body></html>",
    b"<html><body><table><tr><th>County</th><th>City</th><th>Zip Code</th></tr>"
    b"<tr><td>RIVERSIDE</td><td>92592</td></tr></table></body></html>",
    b"<html><body><table><tr><th>Zip Code</th></tr><tr><td>92592</td>",  # cut short
])
def test_malformed_list_view_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_list_view(raw)
