"""The status page at `/`: what a person must be able to read at a glance, from the store."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from monitor.clock import ManualClock
from monitor.events import Condition, Kind, Severity
from monitor.store import Store, conditions
from tests import ledger_states
from tests.status import heatwave as hw


async def record(store: Store, items: list[Condition]) -> None:
    async with store.begin() as conn:
        for c in items:
            await conditions.record(conn, c, hw.NOW)


async def page(client: TestClient[Any, Any]) -> HTMLParser:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    return HTMLParser(await resp.text())


def section(doc: HTMLParser, heading_id: str) -> str:
    node = doc.css_first(f'section[aria-labelledby="{heading_id}"]')
    assert node is not None, heading_id
    return " ".join(node.text(separator=" ").split())


async def test_heatwave_evening_reads_at_a_glance(client: TestClient[Any, Any],
                                                  store: Store) -> None:
    await record(store, [*hw.heatwave_conditions(), hw.margin(date(2022, 9, 5), -9999),
                         hw.margin(date(2022, 9, 13), -8888)])
    doc = await page(client)
    headline = " ".join(doc.css_first("header .headline").text().split())
    assert headline.startswith("CRITICAL")
    assert "CAISO EEA 3 step 1" in headline

    grid = section(doc, "h-grid")
    assert "Restricted Maintenance Operations, Flex Alert, EEA 3" in grid
    assert "2,100 MW" in grid and "2,950 MW" in grid and "BELOW requirement" in grid

    demand = section(doc, "h-demand")
    # demand.csv's 5-minute value wins over stats.txt; peak and time from the real record.
    assert "50,118 MW" in demand and "51,276 MW" in demand
    assert "98% of forecast peak" in demand
    assert "52,061 MW at 16:57 PDT" in demand
    assert "Not current" not in demand

    peaks = section(doc, "h-peak")
    # DAM replaces the earlier 2DA vintage; the day after tomorrow is not "tomorrow".
    assert "CA ISO-TAC 51,180 MW hour ending 18 DAM, made Tue Sep 6 2022, 09:10 PDT" in peaks
    assert "50,950" not in peaks and "46,000" not in peaks
    assert "SCE-TAC 24,410 MW" in peaks

    ra = section(doc, "h-ra")
    assert "-1,250 MW" in ra and "shortfall, lowest of the week" in ra
    assert "880 MW 19:05 PDT tight" in ra
    # Today and the six days after it: neither yesterday nor day 8.
    assert len(doc.css('section[aria-labelledby="h-ra"] tbody tr')) == 7
    assert "Tue Sep 6 2022" in ra and "Mon Sep 12 2022" in ra
    assert "9,999" not in ra and "8,888" not in ra

    notices = section(doc, "h-notices")
    assert notices.index("CRITICAL") < notices.index("WARNING") < notices.index("ADVISORY")
    assert ("CAISO EEA 3 step 1 active Tue Sep 6 2022, 17:17 PDT \u2013 20:00 PDT all CAISO "
            "#202202696") in notices
    assert "CAISO EEA Watch scheduled Wed Sep 7 2022, 16:00 PDT" in notices
    assert "Transmission Emergency" in notices and "Flex Alert" in notices
    assert "202202645" not in notices  # ended on 8/31

    dr = section(doc, "h-dr")
    assert ("EMERGENCY SCE BIP BIP-30 event active Tue Sep 6 2022, 16:00 PDT \u2013 end TBD "
            "SCEC, SCLD event bip-20220906") in dr
    assert "Unknown" not in dr

    # One meaning of "not current": OASIS's open source.health condition, everywhere.
    banner = " ".join(doc.css_first('header [role="alert"]').text(separator=" ").split())
    assert banner.startswith("capmon cannot see 1 of 6 sources")
    assert ("CAISO OASIS forecasts since Tue Sep 6 2022, 09:12 PDT: oasis.caiso.com answered "
            "HTTP 503") in banner
    assert "Not current: capmon cannot see CAISO OASIS forecasts since" in peaks
    sources = section(doc, "h-sources")
    assert "CAISO OASIS forecasts (caiso-oasis) CANNOT SEE since Tue Sep 6 2022" in sources
    assert "SCE DR events (sce-dr) current" in sources
    assert "CAISO notices" not in sources  # no mailbox configured: not watched
    assert "only Flex Alerts are seen here" in notices


async def test_a_blind_capmon_says_unknown_never_no_events(client: TestClient[Any, Any],
                                                          store: Store) -> None:
    """Started with no route to CAISO or SCE: no data, every source blind since start."""
    since = hw.NOW - timedelta(minutes=2)
    await record(store, [hw.cond(f"source.health:{name}", Kind.SOURCE_HEALTH, {
        "source": name, "reason": "dns", "last_error": f"cannot resolve {host}"},
        severity=Severity.WARNING, start=since, regions=())
        for name, host in (("caiso-stats", "www.caiso.com"), ("caiso-flex", "wwwmobile.caiso.com"),
                           ("sce-dr", "www.sce.openadr.com"))])
    doc = await page(client)
    assert doc.css_first("header .headline .badge").text() == "UNKNOWN"
    headline = " ".join(doc.css_first("header .headline").text().split())
    assert "capmon cannot see 3 of its sources" in headline
    banner = " ".join(doc.css_first('header [role="alert"]').text(separator=" ").split())
    assert "SCE DR events since Tue Sep 6 2022, 17:28 PDT: cannot resolve www.sce.openadr.com" \
        in banner
    assert "(last good data: not since start)" in banner
    dr = section(doc, "h-dr")
    assert "No active or scheduled" not in dr
    assert ("Unknown: capmon cannot see SCE DR events since Tue Sep 6 2022, 17:28 PDT (cannot "
            "resolve www.sce.openadr.com), so there may be events it has not seen.") in dr
    notices = section(doc, "h-notices")
    assert "No active or scheduled" not in notices and "CAISO Flex Alerts" in notices
    grid = section(doc, "h-grid")
    assert "As of no data" in grid and "Not current: capmon cannot see CAISO Today's" in grid
    assert "STALE" not in (doc.html or "")


async def test_empty_store_is_unknown_never_normal(client: TestClient[Any, Any]) -> None:
    doc = await page(client)
    text = " ".join(doc.body.text(separator=" ").split()) if doc.body else ""
    assert doc.css_first("header .headline .badge").text() == "UNKNOWN"
    assert "Grid status unknown: no data yet" in text
    grid = section(doc, "h-grid")
    assert "Status unknown" in grid and "Operating reserve unknown" in grid
    assert "As of no data" in grid and "Not current" not in grid
    assert "Current demand unknown" in section(doc, "h-demand")
    assert section(doc, "h-peak").count("no data") == 2
    assert "No data" in section(doc, "h-ra")
    assert "no notifications yet" in section(doc, "h-delivery")
    assert "Normal" not in text and "healthy" not in text


async def test_data_is_judged_by_its_source_not_by_its_age(
        client: TestClient[Any, Any], store: Store, status_clock: ManualClock) -> None:
    """An old value is shown with its time; it is "not current" only when its source is
    reported so (the demo polls stats.txt every 2 hours: that is not a blindness)."""
    await record(store, [hw.status(grid_status=["Normal"])])
    status_clock.advance(timedelta(hours=2).total_seconds())
    grid = section(await page(client), "h-grid")
    assert "Normal" in grid and "As of Tue Sep 6 2022, 17:30 PDT" in grid
    assert "Not current" not in grid
    await record(store, [hw.cond("source.health:caiso-stats", Kind.SOURCE_HEALTH, {
        "source": "caiso-stats", "reason": "timeout",
        "last_error": "www.caiso.com did not answer within 20 s"},
        severity=Severity.WARNING, start=hw.NOW, regions=())])
    grid = section(await page(client), "h-grid")
    assert "Normal" in grid and "Not current: capmon cannot see CAISO Today's Outlook" in grid


async def test_newer_revision_replaces_older(client: TestClient[Any, Any], store: Store) -> None:
    await record(store, [hw.status(observed_at=hw.NOW - timedelta(minutes=5),
                                   current_reserve_mw=1500)])
    await record(store, [hw.status(current_reserve_mw=3400, grid_status=["Flex Alert"])])
    grid = section(await page(client), "h-grid")
    assert "3,400 MW" in grid and "above requirement" in grid and "1,500" not in grid


async def test_notifications_and_delivery_health_without_recipients(
        client: TestClient[Any, Any], store: Store) -> None:
    eea3 = next(c for c in hw.heatwave_conditions() if c.id == "caiso.notice:202202696")
    async with store.begin() as conn:
        for i, state in enumerate(("delivered", "delivered", "dead", "failed")):
            n = hw.notification(f"{i:02d}" + "a" * 30, eea3)
            # The store is written in UTC, as the runtime clock gives it.
            at = (hw.NOW + timedelta(seconds=i)).astimezone(UTC)
            await ledger_states.put(conn, n, state, at)
    doc = await page(client)
    recent = section(doc, "h-recent")
    assert recent.count("CRITICAL sms") == 4 and "dead" in recent
    # What the notification was about, from its condition (not its tenant-written summary).
    assert "CAISO EEA 3 step 1 issued 9/6 17:17-20:00 PT" in recent
    assert "Tue Sep 6 2022, 17:30 PDT" in recent
    health = section(doc, "h-delivery")
    assert "ATTENTION: 1 dead-lettered" in health
    assert "delivered 2" in health and "failed 1" in health
    html = doc.html or ""
    # Served without auth: recipients and subscription names never appear.
    assert "+16265550142" not in html and "CPA scheduler phone" not in html


async def test_page_structure_is_accessible(client: TestClient[Any, Any], store: Store) -> None:
    await record(store, hw.heatwave_conditions())
    resp = await client.get("/")
    assert resp.headers["Cache-Control"] == "no-store"
    doc = HTMLParser(await resp.text())
    assert doc.css_first("html").attributes["lang"] == "en"
    assert doc.css_first('meta[http-equiv="refresh"]').attributes["content"] == "60"
    assert doc.css_first('meta[name="viewport"]') is not None
    for landmark in ("header", "main", "footer"):
        assert len(doc.css(landmark)) == 1, landmark
    assert len(doc.css("h1")) == 1
    for sec in doc.css("section"):
        heading = sec.attributes["aria-labelledby"]
        assert doc.css_first(f"h2#{heading}") is not None
    # Every severity badge carries its word: colour is never the only signal.
    for badge in doc.css(".badge"):
        assert badge.text().strip() in {"CRITICAL", "EMERGENCY", "WARNING", "WATCH",
                                        "ADVISORY", "INFO", "UNKNOWN", "CANNOT SEE"}
    for table in doc.css("table"):
        assert table.css("th[scope]"), "tables have header cells"
