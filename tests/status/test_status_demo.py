"""The status page on the demo's own data: `capmon demo` replays the heat wave up to 17:35 on
2022-09-06, nine minutes into the EEA 3, and the page is read in headless Chromium from the
store the demo wrote, as a scheduler would have seen it then, on a desktop and on a phone.

`make screenshots` runs it with CAPMON_TEST_SCREENSHOT_DIR=docs: the README's pictures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from capmon.api import api_app
from capmon.demo.run import DemoOptions, run_demo
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store
from tests.status.test_status_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    PHONE,
    browser,
    check_charts,
    chromium,
    open_page,
    shots_dir,
)

PT = ZoneInfo("America/Los_Angeles")
AT = datetime(2022, 9, 6, 17, 35, tzinfo=PT)


async def test_status_page_during_the_eea3_from_the_demo_store(
        browser: Browser, aiohttp_server: Callable[..., Awaitable[TestServer]],  # noqa: F811
        tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = await run_demo(DemoOptions(out=out, quiet=True, until=AT))
    assert result.summary["signatures_failed"] == 0 and result.summary["duplicates"] == 0
    store = Store(f"sqlite+aiosqlite:///{out / 'capmon-demo.db'}")
    bus = MemoryBus()
    await bus.start()
    # As the demo configures capmon: CAISO's notices come from its mail drop.
    settings = Settings(sources={"notice_feed_url": "http://127.0.0.1:1/replay/notices"})
    rt = Runtime(settings=settings, clock=ManualClock(AT), bus=bus, store=store)
    try:
        server = await aiohttp_server(api_app(rt))
        page = await open_page(browser, server, DESKTOP)
        assert (await page.get_by_role("status").inner_text()).startswith("CRITICAL")
        notices = page.get_by_role("region", name="Active and scheduled CAISO notices")
        eea3 = notices.get_by_role("row").filter(has_text="202202696")
        assert await eea3.count() == 1
        assert "17:17" in await eea3.inner_text() and "20:00" in await eea3.inner_text()
        dr = await page.get_by_role("region", name="SCE demand-response events").inner_text()
        assert "BIP" in dr and "SDP" in dr
        recent = await page.get_by_role("region", name="Recent notifications").inner_text()
        assert "EEA 3" in recent
        health = await page.get_by_role("region", name="Delivery health").inner_text()
        # DCE's on-call scheduler slept through the EEA 3: the call rang out three times
        # (17:26, 17:28, 17:30) and is dead; the backup took it at 17:36.
        assert "ATTENTION: 1 dead-lettered" in health
        sources = await page.get_by_role("region", name="Data sources").inner_text()
        assert "CAISO notices" in sources and "CANNOT SEE" not in sources
        assert await page.get_by_role("alert").count() == 0
        await check_charts(page, DESKTOP)
        glance = await page.get_by_role("region", name="At a glance").inner_text()
        # The demand curve is every reading the demo's capmon recorded of 9/6 (every 15
        # minutes, the latest 17:30); EEA 3 in the timeline; 9/6 a shortfall.
        assert "Demand 51,676 MW at 17:30 PDT" in glance
        assert "The curves are the 70 readings capmon recorded today." in glance
        assert "CAISO EEA 3 (CRITICAL, active) Tue Sep 6 17:17 PDT \u2013 20:00 PDT" in glance
        assert "days with a shortfall (Tue Sep 6" in glance
        assert "range of thresholds set by 2 tenants" in glance
        await page.screenshot(path=str(shots_dir(tmp_path) / "status-page-demo.png"),
                              full_page=True)
        phone = await open_page(browser, server, PHONE)
        overflow = await phone.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        await check_charts(phone, PHONE)
        await phone.screenshot(path=str(shots_dir(tmp_path) / "status-page-phone.png"),
                               full_page=True)
    finally:
        await store.close()
