"""The status page on the demo's own data: `capmon demo` replays the heat wave up to 17:35 on
2022-09-06, nine minutes into the EEA 3, and the page is read in headless Chromium from the
store the demo wrote, as a scheduler would have seen it then."""

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
    browser,
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
        assert "healthy: no failed or dead deliveries" in health
        sources = await page.get_by_role("region", name="Data sources").inner_text()
        assert "CAISO notices" in sources and "CANNOT SEE" not in sources
        assert await page.get_by_role("alert").count() == 0
        await page.screenshot(path=str(shots_dir(tmp_path) / "status-page-demo.png"),
                              full_page=True)
    finally:
        await store.close()
