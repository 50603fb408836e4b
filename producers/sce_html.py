"""SCE's DR event status pages (the HTML fallback): pure parsers.

`scepr-event-status.jsf` (Commercial tab) and `scepr-event-status-resi.jsf` (Residential) are
server-rendered JSF/RichFaces pages. Each program has a panel: an `<h3>` heading
(`Capacity Bidding Program (CBP)`), a header line (`N Event(s) in Progress` or `No Events in
Progress`), an "Active Events" table and a "Scheduled Events" table. Panels are found by their
heading and tables by their caption (or the label just before them), and columns by header
text, never by position. The pages carry no event id; the List link
(`scepr-event-listview.jsf?productName=..&eventKey=..&isActive=..`) does, and is used when
present.

A page that is not in this shape is a ParseError, never "no events": a page cut short (no
closing `</html>`), no program panel, a panel
without both tables, a table whose header lacks `Start Date`, a row whose cell count differs
from its header, or a header line counting a different number of active events than its table
lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.html
from lxml import etree

from monitor.errors import ParseError
from monitor.events import Condition
from producers.dr_events import CustomerClass, DrEvent, conditions_of
from producers.sce_api import SCE_TAC
from producers.sce_locations import ALL_SUBLAPS, is_all, resolve
from producers.sce_programs import Program, notice_of_product, program_for_heading
from producers.sce_values import ValueFormatError, is_tbd, local_from

_IN_PROGRESS = re.compile(r"\b(\d+|no)\s+events?(?:\(s\))?\s+in\s+progress\b", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(active|scheduled)\s+events\s*:?\s*$", re.IGNORECASE)
_EMPTY_ROW = re.compile(r"^\s*(no\b|there are no\b|none\b)", re.IGNORECASE)
# Programs whose panels list prices, not events (RTP's daily pricing category).
_NOT_EVENTS = frozenset({"RTP"})
MAX_ROWS = 5000


@dataclass(frozen=True)
class Panel:
    program: Program
    active: tuple[DrEvent, ...]
    scheduled: tuple[DrEvent, ...]


@dataclass(frozen=True)
class StatusPage:
    customer_class: CustomerClass
    panels: tuple[Panel, ...]

    @property
    def events(self) -> tuple[DrEvent, ...]:
        return tuple(ev for p in self.panels for ev in (*p.active, *p.scheduled))

    @property
    def programs(self) -> frozenset[str]:
        return frozenset(p.program.code for p in self.panels)


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def _all_text(el: etree._Element) -> str:
    return "".join(str(t) for t in el.itertext())


def _own_text(el: etree._Element) -> str:
    return _norm(el.text) if isinstance(el.tag, str) else ""


def _header(table: etree._Element) -> list[str]:
    for tr in table.iter("tr"):
        ths = tr.findall("th")
        if ths:
            return [_norm(_all_text(th)).lower() for th in ths]
    return []


@dataclass
class _PanelState:
    program: Program
    in_progress: int | None = None
    pending_label: str | None = None
    tables: dict[str, etree._Element] | None = None


def _note_text(panel: _PanelState, tag: str, own: str) -> None:
    """The panel's "N Event(s) in Progress" line, and a label announcing the next table."""
    if not own:
        return
    m = _IN_PROGRESS.search(own)
    if m and panel.in_progress is None:
        panel.in_progress = 0 if m.group(1).lower() == "no" else int(m.group(1))
    elif _LABEL.match(own) and tag != "caption":
        panel.pending_label = own.lower().split()[0]


def detect_class(doc: etree._Element) -> CustomerClass:
    for form in doc.iter("form"):
        if "-resi" in (form.get("action") or ""):
            return "residential"
    title = _norm(" ".join(_all_text(t) for t in doc.iter("title"))).lower()
    return "residential" if "residential" in title else "commercial"


def parse_status_page(raw: bytes, url: str | None = None,
                      customer_class: CustomerClass | None = None) -> StatusPage:
    """One tab's panels and events. `customer_class` defaults to what the page says."""
    if not raw.strip():
        raise ParseError("empty page", reason="empty")
    if b"</html>" not in raw[-4096:].lower():
        # A page cut short can still hold whole panels; missing ones would read as "no events".
        raise ParseError("page is truncated (no </html>)", reason="truncated")
    try:
        doc = lxml.html.fromstring(raw)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not HTML: {str(exc)[:80]}", reason="syntax") from None
    cls = customer_class or detect_class(doc)
    panels: list[_PanelState] = []
    current: _PanelState | None = None
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag == "h3":
            program = program_for_heading(_all_text(el))
            current = _PanelState(program) if program is not None else None
            if current is not None:
                if any(p.program.code == current.program.code for p in panels):
                    raise ParseError(f"two panels for {current.program.code}", reason="shape")
                current.tables = {}
                panels.append(current)
            continue
        own = _own_text(el)
        if tag != "table":
            if current is not None:
                _note_text(current, tag, own)
            continue
        caption = el.find("caption")
        label = current.pending_label if current is not None else None
        if caption is not None:
            words = _norm(_all_text(caption)).lower().split()
            label = words[0] if words else None
        is_events = any("start date" in h for h in _header(el))
        if current is None or current.program.code in _NOT_EVENTS or current.tables is None:
            if is_events or (caption is not None and label in ("active", "scheduled")):
                # An events table under no program we know (a heading lost or renamed): its
                # events would vanish silently.
                raise ParseError("events table outside any known program panel",
                                 reason="shape")
            continue
        where = current.program.code
        if not is_events:
            if caption is not None and label in ("active", "scheduled"):
                raise ParseError(f"{where} {label} table has no Start Date", reason="shape")
            continue  # a layout table
        if label not in ("active", "scheduled"):
            raise ParseError(f"{where}: events table without a label", reason="shape")
        if label in current.tables:
            raise ParseError(f"{where}: two {label} tables", reason="shape")
        current.tables[label] = el
        current.pending_label = None

    result = []
    for state in panels:
        if state.program.code in _NOT_EVENTS:
            continue
        tables = state.tables or {}
        missing = {"active", "scheduled"} - set(tables)
        if missing:
            raise ParseError(f"{state.program.code}: no {'/'.join(sorted(missing))} table",
                             reason="shape")
        active = _rows(tables["active"], state.program, cls, "active", url)
        scheduled = _rows(tables["scheduled"], state.program, cls, "scheduled", url)
        if state.in_progress is not None and state.in_progress != len(active):
            raise ParseError(f"{state.program.code}: header says {state.in_progress} in "
                             f"progress, table lists {len(active)}", reason="count")
        result.append(Panel(state.program, active, scheduled))
    if not panels:
        raise ParseError("no DR program panel found", reason="shape")
    return StatusPage(customer_class=cls, panels=tuple(result))


def _rows(table: etree._Element, program: Program, cls: CustomerClass, listed: str,
          url: str | None) -> tuple[DrEvent, ...]:
    header = _header(table)
    events = []
    rows = [tr for tr in table.iter("tr") if not tr.findall("th")]
    if len(rows) > MAX_ROWS:
        raise ParseError(f"{program.code}: {len(rows)} rows", reason="size")
    for tr in rows:
        cells = tr.findall("td")
        texts = [_norm(_all_text(td)) for td in cells]
        if not cells or (len(cells) == 1 and (not texts[0] or _EMPTY_ROW.match(texts[0]))):
            continue
        if len(cells) != len(header):
            raise ParseError(f"{program.code} {listed}: row of {len(cells)} cells under "
                             f"{len(header)} columns", reason="shape")
        row = dict(zip(header, cells, strict=True))
        try:
            events.append(_event(row, program, cls, listed, url))
        except ValueFormatError as exc:
            raise ParseError(f"{program.code} {listed}: {exc}", reason="value") from None
    return tuple(events)


def _cell(row: dict[str, etree._Element], *names: str) -> str | None:
    for name in names:
        if name in row:
            return _norm(_all_text(row[name]))
    return None


def _list_link(row: dict[str, etree._Element], url: str | None) -> tuple[str, str] | None:
    """(eventKey, absolute list-view URL) from the row's List link."""
    cell = row.get("list")
    if cell is None:
        return None
    for a in cell.iter("a"):
        href = urljoin(url or "", a.get("href") or "")
        keys = parse_qs(urlsplit(href).query).get("eventKey")
        if keys and keys[0].strip():
            return keys[0].strip(), href
    return None


def _event(row: dict[str, etree._Element], program: Program, cls: CustomerClass, listed: str,
           url: str | None) -> DrEvent:
    start_date = _cell(row, "start date")
    start_time = _cell(row, "start time")
    if not start_date or not start_time:
        raise ValueFormatError("row without a start")
    start = local_from(start_date, start_time)
    end_date = _cell(row, "end date")
    end_time = _cell(row, "end time", "estimated end time")
    end = None
    if not (is_tbd(end_time) or is_tbd(end_date) or not end_time):
        end = local_from(end_date or start_date, end_time)
        if end < start:
            raise ValueFormatError(f"end {end} before start {start}")
    product = _cell(row, "product") or None
    if product is None and program.code == "SDP" and cls == "residential":
        product = "SDP"
    blocks_text = _cell(row, "blocks", "block")
    location_type: str | None = None
    locations: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    sublaps: tuple[str, ...]
    zips: tuple[str, ...]
    if blocks_text is not None:
        parts = tuple(p for p in re.split(r"[,\s]+", blocks_text) if p)
        if not parts or any(is_all(p) for p in parts):
            location_type, locations = "ALL", ("All",)
        else:
            location_type = "BLOCK"
            blocks = locations = tuple(p.upper() for p in parts)
    geo = resolve(location_type, locations)
    link = _list_link(row, url)
    if location_type is None:
        # The page does not say where (SDP, CPP): the whole territory, flagged unresolved.
        sublaps, zips, resolved = ALL_SUBLAPS, (), False
    else:
        sublaps, zips, resolved = geo.sublaps, geo.zips, geo.resolved
    return DrEvent(
        utility="SCE", program=program.code, product=product, severity=program.severity,
        interruptible=program.interruptible, customer_class=cls,
        listed="active" if listed == "active" else "scheduled",
        start=start, end=end, estimated_end="estimated end time" in row and end is not None,
        event_key=link[0] if link else None, detail_url=link[1] if link else None,
        location_type=location_type, locations=locations,
        blocks=blocks, sublaps=sublaps, zips=zips, location_resolved=resolved,
        regions=(SCE_TAC,), notice=notice_of_product(product),
        source_url=url, channel="html",
    )


_ZIP = re.compile(r"^(\d{5})(?:-\d{4})?$")


def parse_list_view(raw: bytes) -> tuple[str, ...]:
    """The ZIP codes of one event's list view (`scepr-event-listview.jsf`, columns
    County | City | Zip Code). An empty table is no ZIPs; a page without that table, or a
    ZIP cell that is not a ZIP code, is a ParseError."""
    if b"</html>" not in raw[-4096:].lower():
        raise ParseError("list view is truncated (no </html>)", reason="truncated")
    try:
        doc = lxml.html.fromstring(raw)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"list view is not HTML: {str(exc)[:80]}", reason="syntax") from None
    for table in doc.iter("table"):
        header = _header(table)
        if not any("zip" in h for h in header):
            continue
        col = next(i for i, h in enumerate(header) if "zip" in h)
        zips: list[str] = []
        for tr in table.iter("tr"):
            cells = tr.findall("td")
            if not cells or len(cells) == 1:
                continue  # header row, or a one-cell "no locations" row
            if len(cells) != len(header):
                raise ParseError("list view row does not match its header", reason="shape")
            text = _norm(_all_text(cells[col]))
            m = _ZIP.match(text)
            if m is None:
                raise ParseError(f"list view: {text[:20]!r} is not a ZIP code", reason="value")
            zips.append(m.group(1))
        return tuple(dict.fromkeys(zips))
    raise ParseError("list view has no Zip Code table", reason="shape")


def parse_status_page_conditions(raw: bytes, fetched_at: datetime) -> list[Condition]:
    """`capmon parse sce-dr-html`: a saved status page (either tab) as conditions."""
    page = parse_status_page(raw)
    return conditions_of(list(page.events), fetched_at, observed_at=fetched_at)
