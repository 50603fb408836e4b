"""SCE's DR event site, rendered from a list of events: the JSON API and both status pages.

No live response of the site has ever been captured, so this renders the documented shape
(docs/sources-sce.md sections 1-2): Jettison-mapped JSON (`events.map`, `lastUpdateTime.item`,
booleans as strings, a one-element list written as a bare object) and RichFaces-style panels
with `<h3>` headings, an "N Event(s) in Progress" line and captioned "Active Events" /
"Scheduled Events" tables. The same `SiteEvent`s render both ways, so a test can check that the
two paths agree. The committed `tests/fixtures/sce/site/*.synthetic.*` files are renderings of
`SCENARIOS` (`python -m tests.producers.sce_site` rewrites them; a test checks they match).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
SITE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "sce" / "site"

# Panel order and headings per tab; the site codes of the JSON categories.
RESIDENTIAL_PANELS = (("SAI", "Summer Advantage Incentive / Critical Peak Pricing (CPP)"),
                      ("SPD", "Save Power Day (SPD)"),
                      ("SDP", "Summer Discount Plan (SDP) - Residential Air Conditioning Plan"))
COMMERCIAL_PANELS = (("RTP", "Real Time Pricing (RTP)"),
                     ("API", "Agricultural & Pumping Interruptible Program (AP-I)"),
                     ("CBP", "Capacity Bidding Program (CBP)"),
                     ("DBP", "Demand Bidding Program (DBP)"),
                     ("SDP", "Summer Discount Plan (SDP) - Commercial"),
                     ("BIP", "Base Interruptible Program (BIP)"))
_BLOCK_PANELS = {"API", "CBP", "BIP"}
_LIST_CODE = {"SDP": "R", "API": "A", "BIP": "B", "CBP": "C", "SAI": "P"}


@dataclass(frozen=True)
class SiteEvent:
    program: str  # site code: SAI, SPD, SDP, API, CBP, DBP, BIP
    klass: str  # RESIDENTIAL or COMMERCIAL
    product: str
    start: datetime  # naive Pacific wall clock
    end: datetime | None  # None: TBD
    key: str
    location_type: str = "ALL"
    locations: tuple[str, ...] = ("All",)
    zip_codes: tuple[str, ...] = ()
    active: bool = False
    issued: datetime | None = None

    @property
    def estimated(self) -> bool:
        # SDP's panel heads its end column "Estimated End Time": every SDP end is an estimate.
        return self.program == "SDP"

    @property
    def category(self) -> str:
        return f"{self.program}_{self.klass}_{'ACTIVE' if self.active else 'SCHEDULED'}"


def _ms(local: datetime) -> int:
    return int(local.replace(tzinfo=PACIFIC).timestamp() * 1000)


def _event_json(ev: SiteEvent) -> dict[str, object]:
    blocks = ev.location_type == "BLOCK"
    return {
        "eventKey": ev.key,
        "uuid": f"uuid-{ev.key}",
        "parentUuid": None,
        "program": ev.program,
        "product": ev.product,
        "ir": "true" if ev.program in ("SDP", "API", "CBP", "BIP") else "false",
        "startDate": f"{ev.start:%m/%d/%Y}",
        "startTime": f"{ev.start:%I:%M%p}",
        "endDate": f"{ev.end:%m/%d/%Y}" if ev.end else "TBD",
        "endTime": f"{ev.end:%I:%M%p}" if ev.end else "TBD",
        "startDateTime": _ms(ev.start),
        "endDateTime": _ms(ev.end) if ev.end else None,
        "estimated": "true" if ev.estimated else "false",
        "active": "true" if ev.active else "false",
        "issueTime": _ms(ev.issued) if ev.issued else None,
        "locationType": ev.location_type,
        "locationNumber": ev.locations[0] if len(ev.locations) == 1 else None,
        "locationBlock": ",".join(ev.locations) if blocks else None,
        # Jettison: a one-element list is written as the element itself.
        "locations": ev.locations[0] if len(ev.locations) == 1 else list(ev.locations),
        "zipCodes": ",".join(ev.zip_codes) or None,
        "cityNames": None,
        "countyNames": None,
        "aggNames": None,
    }


def event_store(events: Iterable[SiteEvent], marks: dict[str, int],
                categories: Sequence[str] | None = None) -> bytes:
    """`getEventStore` for `categories` (default: every category with events)."""
    by_cat: dict[str, list[dict[str, object]]] = {}
    for ev in events:
        by_cat.setdefault(ev.category, []).append(_event_json(ev))
    cats = list(categories) if categories is not None else sorted(by_cat)
    mapped: dict[str, object] = {}
    for cat in cats:
        items = by_cat.get(cat, [])
        if items:  # mapped JSON leaves empty lists out
            mapped[cat] = items[0] if len(items) == 1 else items
    body = {"eventStore": {
        "events": {"map": mapped},
        "lastUpdateTime": {"item": {c: marks[c] for c in cats if c in marks}},
        "todayWeather": None, "forecastWeather": None}}
    return json.dumps(body, indent=1).encode()


def last_update(marks: dict[str, int]) -> bytes:
    return json.dumps({"lastUpdateTime": {"item": dict(sorted(marks.items()))}}).encode()


def _cell(text: str) -> str:
    return f"<td>{html.escape(text)}</td>"


def d(when: datetime) -> str:
    return f"{when:%m/%d/%Y}"


def t(when: datetime) -> str:
    return f"{when:%I:%M%p}"


def _row(ev: SiteEvent, program: str) -> str:
    end_date = d(ev.end) if ev.end else "TBD"
    end_time = t(ev.end) if ev.end else "TBD"
    query = urlencode({"productName": _LIST_CODE.get(program, "C"), "eventKey": ev.key,
                       "isActive": "true" if ev.active else "false"})
    links = (f'<td><a href="scepr-event-listview.jsf?{html.escape(query)}">List</a></td>'
             f'<td><a href="scepr-event-mapview.jsf?{html.escape(query)}">Map</a></td>')
    if program == "SDP":
        cells = [_cell(d(ev.start)), _cell(t(ev.start)), _cell(end_date), _cell(end_time)]
        return "<tr class=\"rich-table-row\">" + "".join(cells) + links + "</tr>"
    if program in _BLOCK_PANELS:
        blocks = ", ".join(ev.locations) if ev.location_type == "BLOCK" else "All"
        cells = [_cell(ev.product), _cell(d(ev.start)), _cell(end_date), _cell(t(ev.start)),
                 _cell(end_time), _cell(blocks)]
        return "<tr class=\"rich-table-row\">" + "".join(cells) + links + "</tr>"
    cells = [_cell(ev.product), _cell(d(ev.start)), _cell(t(ev.start)), _cell(end_date),
             _cell(end_time)]
    return "<tr class=\"rich-table-row\">" + "".join(cells) + "</tr>"


def _columns(program: str) -> list[str]:
    if program == "SDP":
        return ["Start Date", "Start Time", "End Date", "Estimated End Time", "List", "Map"]
    if program in _BLOCK_PANELS:
        return ["Product", "Start Date", "End Date", "Start Time", "End Time", "Blocks", "List",
                "Map"]
    return ["Product", "Start Date", "Start Time", "End Date", "End Time"]


def _table(label: str, program: str, events: list[SiteEvent]) -> str:
    head = "".join(f"<th>{c}</th>" for c in _columns(program))
    rows = "".join(_row(ev, program) for ev in events)
    if not rows:
        rows = f'<tr><td colspan="{len(_columns(program))}">No {label.lower()}</td></tr>'
    return (f'<table class="rich-table"><caption>{label}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def status_page(klass: str, events: Iterable[SiteEvent], as_of: datetime) -> bytes:
    """One tab (`RESIDENTIAL` or `COMMERCIAL`) of the status site."""
    panels = RESIDENTIAL_PANELS if klass == "RESIDENTIAL" else COMMERCIAL_PANELS
    page = "scepr-event-status-resi.jsf" if klass == "RESIDENTIAL" else "scepr-event-status.jsf"
    evs = [ev for ev in events if ev.klass == klass]
    parts = []
    for code, heading in panels:
        if code == "RTP":
            parts.append(
                f'<div class="rich-panel" id="panel{code}"><div class="rich-panel-header">'
                f"<h3>{html.escape(heading)}</h3></div><div class=\"rich-panel-body\">"
                '<span id="tempDatetime">Pricing category for today: Hot Summer Weekday</span>'
                '<div id="RTPForecastDIV"><table><tr class="rich-table-row"><td>Mon</td>'
                "<td>97</td></tr></table></div></div></div>")
            continue
        active = [ev for ev in evs if ev.program == code and ev.active]
        scheduled = [ev for ev in evs if ev.program == code and not ev.active]
        count = f"{len(active)} Event(s) in Progress" if active else "No Events in Progress"
        cycling = ("<div>Air Conditioners Are Being Cycled-Off</div>"
                   if code == "SDP" and active else "")
        parts.append(
            f'<div class="rich-panel" id="panel{code}"><div class="rich-panel-header">'
            f"<h3>{html.escape(heading)}</h3></div><div class=\"rich-panel-body\">"
            f'<div class="eventCount">{count}</div>{cycling}'
            f'{_table("Active Events", code, active)}'
            f'{_table("Scheduled Events", code, scheduled)}</div></div>')
    tab = "Residential" if klass == "RESIDENTIAL" else "Commercial"
    body = (
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><head>"
        f"<title>SCE Demand Response Event Status - {tab}</title></head><body>"
        f'<form id="form" method="post" action="/dr.website/{page}">'
        '<div class="tabs"><a href="scepr-event-status-resi.jsf">Residential</a> '
        '<a href="scepr-event-status.jsf">Commercial</a> '
        '<a href="scepr-event-history.jsf">Event History</a></div>'
        f'<span id="outputText_systemTime">{as_of:%m/%d/%Y %I:%M %p}</span>'
        + "".join(parts)
        + "<p>DBP Events scheduled for tomorrow will not appear until after 6PM today.</p>"
        "<p>This website is not intended as a substitute for receiving SCE event "
        "notifications.</p></form></body></html>\n")
    return body.encode()


def list_view(ev: SiteEvent | None) -> bytes:
    """`scepr-event-listview.jsf` for one event: County | City | Zip Code."""
    if ev is None or not ev.zip_codes:
        rows = '<tr><td colspan="3">All locations</td></tr>'
    else:
        rows = "".join(f"<tr>{_cell('RIVERSIDE')}{_cell('TEMECULA')}{_cell(z)}</tr>"
                       for z in ev.zip_codes)
    return ("<!DOCTYPE html>\n<html><head><title>Event Locations</title></head><body>"
            '<table class="rich-table"><thead><tr><th>County</th><th>City</th>'
            f"<th>Zip Code</th></tr></thead><tbody>{rows}</tbody></table>"
            "</body></html>\n").encode()


# -- the real episodes the fixtures are built on (docs/sources-sce.md section 6) --------------

def _t(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M")


def episode_2010_09_27(at: str) -> list[SiteEvent]:
    """A CPP/CBP/DBP day that became a CAISO transmission emergency (Round Mountain-Table
    Mountain 500 kV lines lost at 15:16): AP-I all districts 15:16-16:31, SDP Base (APS) and
    Enhanced (APS-E) on all substations until 17:31 and 18:13. `at` is the local poll time;
    ends are TBD until the operators set them."""
    now = _t(at)
    issued_da = _t("2010-09-26 15:00")
    day_ahead = [
        SiteEvent("SAI", "RESIDENTIAL", "CPP", _t("2010-09-27 14:00"), _t("2010-09-27 18:00"),
                  "SAI-20100927-1", issued=issued_da),
        SiteEvent("CBP", "COMMERCIAL", "CBP 1-4 DA", _t("2010-09-27 14:00"),
                  _t("2010-09-27 18:00"), "CBP-1-4-DA-20100927", issued=issued_da),
        SiteEvent("CBP", "COMMERCIAL", "CBP 2-6 DA", _t("2010-09-27 14:00"),
                  _t("2010-09-27 18:00"), "CBP-2-6-DA-20100927", issued=issued_da),
        SiteEvent("DBP", "COMMERCIAL", "DBP DA", _t("2010-09-27 12:00"), _t("2010-09-27 20:00"),
                  "DBP-DA-20100927", issued=_t("2010-09-26 18:00")),
    ]
    emergency = [
        SiteEvent("API", "COMMERCIAL", "API", _t("2010-09-27 15:16"),
                  _t("2010-09-27 16:31") if now >= _t("2010-09-27 16:20") else None,
                  "API-20100927-1516", location_type="District"),
        SiteEvent("SDP", "COMMERCIAL", "APS", _t("2010-09-27 15:16"),
                  _t("2010-09-27 17:31") if now >= _t("2010-09-27 16:45") else None,
                  "APS-20100927-1516", location_type="SUBSTATION"),
        SiteEvent("SDP", "COMMERCIAL", "APS-E", _t("2010-09-27 15:16"),
                  _t("2010-09-27 18:13") if now >= _t("2010-09-27 16:45") else None,
                  "APS-E-20100927-1516", location_type="SUBSTATION"),
    ]
    listed = [ev for ev in day_ahead if ev.end is not None and now < ev.end]
    if now >= _t("2010-09-27 15:16"):
        listed += [ev for ev in emergency if ev.end is None or now < ev.end]
    return [_as_of(ev, now) for ev in listed]


def _as_of(ev: SiteEvent, now: datetime) -> SiteEvent:
    from dataclasses import replace

    return replace(ev, active=ev.start <= now)


def episode_2011_09_21() -> list[SiteEvent]:
    """AP-I all districts from 13:47 (end TBD), and BIP blocks P, Q, R (BIP-30) and T (BIP-15)
    scheduled for 14:00-16:00, as the site would show them at 13:50."""
    start, end = _t("2011-09-21 14:00"), _t("2011-09-21 16:00")
    bip = [SiteEvent("BIP", "COMMERCIAL", product, start, end, f"BIP-20110921-{block}",
                     location_type="BLOCK", locations=(block,), issued=_t("2011-09-21 13:30"))
           for product, block in (("BIP-30", "P"), ("BIP-30", "Q"), ("BIP-30", "R"),
                                  ("BIP-15", "T"))]
    api = SiteEvent("API", "COMMERCIAL", "API", _t("2011-09-21 13:47"), None,
                    "API-20110921-1347", location_type="District", active=True)
    return [api, *bip]


def episode_2009_09_30() -> list[SiteEvent]:
    """The erroneous all-territory SDP activation: 08:53-08:54, Base and Enhanced."""
    return [SiteEvent("SDP", "COMMERCIAL", product, _t("2009-09-30 08:53"),
                      _t("2009-09-30 08:54"), f"{product}-20090930-0853",
                      location_type="District", active=True)
            for product in ("APS", "APS-E")]


def episode_2010_07_28() -> list[SiteEvent]:
    """A 25-minute single-substation SDP test: APS-E at Pechanga (8347), 13:00-13:25."""
    return [SiteEvent("SDP", "COMMERCIAL", "APS-E", _t("2010-07-28 13:00"),
                      _t("2010-07-28 13:25"), "APS-E-20100728-8347",
                      location_type="SUBSTATION", locations=("8347",),
                      zip_codes=("92592", "92590"), active=True)]


def episode_2010_08_23() -> list[SiteEvent]:
    """A CPP day announced the day before: 8/24/2010 14:00-18:00 (HE15-18), listed on 8/23."""
    return [SiteEvent("SAI", "RESIDENTIAL", "CPP", _t("2010-08-24 14:00"),
                      _t("2010-08-24 18:00"), "SAI-20100824-1", issued=_t("2010-08-23 15:00"))]


def marks_for(events: Iterable[SiteEvent], base_ms: int) -> dict[str, int]:
    from producers.sce_api import CATEGORIES

    marks = dict.fromkeys(CATEGORIES, base_ms)
    for ev in events:
        marks[ev.category] = base_ms + 1000
    return marks


SCENARIOS: dict[str, tuple[list[SiteEvent], datetime]] = {
    "2010-09-27_transmission_emergency": (episode_2010_09_27("2010-09-27 15:20"),
                                          _t("2010-09-27 15:20")),
    "2011-09-21_bip_blocks": (episode_2011_09_21(), _t("2011-09-21 13:50")),
    "2009-09-30_one_minute": (episode_2009_09_30(), _t("2009-09-30 08:53")),
    "2010-07-28_substation_test": (episode_2010_07_28(), _t("2010-07-28 13:05")),
    "2010-08-23_cpp_day_ahead": (episode_2010_08_23(), _t("2010-08-23 16:00")),
}


def scenario_files(name: str) -> dict[str, bytes]:
    events, at = SCENARIOS[name]
    marks = marks_for(events, _ms(at) - 60_000)
    lists = {f"listview_{ev.key}.synthetic.html": list_view(ev)
             for ev in events if ev.zip_codes}
    return {
        **lists,
        f"event_store_{name}.synthetic.json": event_store(events, marks),
        f"status_residential_{name}.synthetic.html": status_page("RESIDENTIAL", events, at),
        f"status_commercial_{name}.synthetic.html": status_page("COMMERCIAL", events, at),
    }


def fetched_at(name: str) -> datetime:
    return SCENARIOS[name][1].replace(tzinfo=PACIFIC).astimezone(UTC)


if __name__ == "__main__":
    SITE_DIR.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        for fname, content in scenario_files(scenario).items():
            (SITE_DIR / fname).write_bytes(content)
