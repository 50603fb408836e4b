"""The status page at `/`: what a person must be able to read at a glance, from the store."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from monitor.clock import ManualClock
from monitor.events import Condition
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
    assert "EEA 3 (step 1)" in headline

    grid = section(doc, "h-grid")
    assert "Restricted Maintenance Operations, Flex Alert, EEA 3" in grid
    assert "2,100 MW" in grid and "2,950 MW" in grid and "BELOW requirement" in grid

    demand = section(doc, "h-demand")
    # demand.csv's 5-minute value wins over stats.txt; peak and time from the real record.
    assert "50,118 MW" in demand and "51,276 MW" in demand
    assert "98% of forecast peak" in demand
    assert "52,061 MW at 16:57 PDT" in demand
    assert "STALE" not in demand

    peaks = section(doc, "h-peak")
    # DAM replaces the earlier 2DA vintage; the day after tomorrow is not "tomorrow".
    assert "CA ISO-TAC 51,180 MW hour ending 18 DAM, made Tue Sep 6, 09:10 PDT" in peaks
    assert "50,950" not in peaks and "46,000" not in peaks
    assert "SCE-TAC 24,410 MW" in peaks

    ra = section(doc, "h-ra")
    assert "-1,250 MW" in ra and "shortfall, lowest of the week" in ra
    assert "880 MW 19:05 PDT tight" in ra
    # Today and the six days after it: neither yesterday nor day 8.
    assert len(doc.css('section[aria-labelledby="h-ra"] tbody tr')) == 7
    assert "Tue Sep 6" in ra and "Mon Sep 12" in ra and "9,999" not in ra and "8,888" not in ra

    notices = section(doc, "h-notices")
    assert notices.index("CRITICAL") < notices.index("WARNING") < notices.index("ADVISORY")
    assert ("EEA 3 (step 1) active Tue Sep 6, 17:17 PDT \u2013 20:00 PDT CAISO Grid "
            "notice 202202696") in notices
    assert "EEA Watch scheduled Wed Sep 7, 16:00 PDT" in notices
    assert "Transmission Emergency" in notices and "Flex Alert" in notices
    assert "202202645" not in notices  # ended on 8/31

    dr = section(doc, "h-dr")
    assert "EMERGENCY SCE BIP (BIP-30) active Tue Sep 6, 16:00 PDT \u2013 end TBD SCEC, SCLD" in dr

    sources = section(doc, "h-sources")
    assert "STALE caiso_oasis" in sources and "fetch" in sources and "4 missed polls" in sources


async def test_empty_store_is_unknown_never_normal(client: TestClient[Any, Any]) -> None:
    doc = await page(client)
    text = " ".join(doc.body.text(separator=" ").split()) if doc.body else ""
    assert doc.css_first("header .headline .badge").text() == "UNKNOWN"
    assert "Grid status unknown: no data yet" in text
    grid = section(doc, "h-grid")
    assert "Status unknown" in grid and "Operating reserve unknown" in grid
    assert "As of no data (STALE" in grid
    assert "Current demand unknown" in section(doc, "h-demand")
    assert section(doc, "h-peak").count("no data") == 2
    assert "No data" in section(doc, "h-ra")
    assert "no notifications yet" in section(doc, "h-delivery")
    assert "Normal" not in text and "healthy" not in text


async def test_old_status_is_marked_stale(client: TestClient[Any, Any], store: Store,
                                          status_clock: ManualClock) -> None:
    await record(store, [hw.status(grid_status=["Normal"])])
    status_clock.advance(timedelta(minutes=14).total_seconds())
    assert "STALE" not in section(await page(client), "h-grid")
    status_clock.advance(timedelta(minutes=2).total_seconds())
    grid = section(await page(client), "h-grid")
    assert "Normal" in grid and "STALE" in grid


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
    assert "CAISO EEA 3 issued 09/06 17:17-20:00 PT" in recent
    assert "Tue Sep 6, 17:30 PDT" in recent
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
                                        "ADVISORY", "INFO", "UNKNOWN", "STALE"}
    for table in doc.css("table"):
        assert table.css("th[scope]"), "tables have header cells"
