"""The status page in a real browser: Debian's headless Chromium driven by Playwright.

Never downloads a browser: it launches /usr/bin/chromium (`apt-get install chromium`) and fails
if it is missing. Screenshots at phone and desktop widths go to the test's tmp dir, or to
$CAPMON_TEST_SCREENSHOT_DIR (e.g. docs/) when set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright

from capmon.api import api_app
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store, conditions
from tests import ledger_states
from tests.status import heatwave as hw

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# WCAG relative-luminance contrast of every badge and body text, computed in the page.
CONTRAST_JS = """
() => {
  const rgb = s => s.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bgOf = el => { for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; }
    return 'rgb(255, 255, 255)'; };
  return [...document.querySelectorAll('.badge, dd, dt, td, th, p, h1, h2')].map(el => {
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(rgb(bgOf(el)));
    return [el.textContent.trim().slice(0, 40), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}
"""


# Each chart's SVG: its label, its box, and the smallest text in it as drawn (CSS px).
CHARTS_JS = """
() => [...document.querySelectorAll('figure.chart svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  const scale = box.width / svg.viewBox.baseVal.width;
  const sizes = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
    .map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
  return {label: svg.getAttribute('aria-labelledby'), width: box.width, height: box.height,
          left: box.left, right: box.right, smallest: Math.min(...sizes)};
})
"""
CHART_KEYS = ["demand", "peaks", "margins", "timeline"]


async def check_charts(page: Page, viewport: dict[str, int]) -> None:
    """All four charts drawn, visible, inside the screen, their text readable."""
    charts = await page.evaluate(CHARTS_JS)
    assert [c["label"] for c in charts] == [
        f"chart-{k}-title chart-{k}-desc" for k in CHART_KEYS]
    for c in charts:
        assert c["width"] > 200 and c["height"] > 100, c
        assert c["left"] >= 0 and c["right"] <= viewport["width"], c
        assert c["smallest"] >= 10, c
    for svg in await page.locator("figure.chart svg").all():
        assert await svg.is_visible()
    region = page.get_by_role("region", name="At a glance")
    for key in CHART_KEYS:
        img = region.get_by_role("img").and_(page.locator(f"svg[aria-labelledby^=chart-{key}]"))
        assert await img.count() == 1, key


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
                 ) -> AsyncIterator[TestServer]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}")
    await store.upgrade()
    async with store.begin() as conn:
        for c in hw.heatwave_conditions():
            await conditions.record(conn, c, hw.NOW)
        eea3 = next(c for c in hw.heatwave_conditions() if c.id == "caiso.notice:202202696")
        for i, state in enumerate(("delivered", "delivered", "delivered", "failed")):
            n = hw.notification(f"{i:02d}" + "b" * 30, eea3)
            await ledger_states.put(conn, n, state, (hw.NOW + timedelta(seconds=i)).astimezone(UTC))
    bus = MemoryBus()
    await bus.start()
    rt = Runtime(settings=Settings(), clock=ManualClock(hw.NOW), bus=bus, store=store)
    try:
        yield await aiohttp_server(api_app(rt))
    finally:
        await store.close()


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium", pytrace=False)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("CAPMON_TEST_SCREENSHOT_DIR") or tmp_path)


async def open_page(browser: Browser, server: TestServer, viewport: dict[str, int]) -> Page:
    page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    resp = await page.goto(str(server.make_url("/")))
    assert resp is not None and resp.status == 200
    return page


async def test_landmarks_and_content_in_chromium(browser: Browser, server: TestServer,
                                                 tmp_path: Path) -> None:
    page = await open_page(browser, server, DESKTOP)
    for role in ("banner", "main", "contentinfo"):
        assert await page.get_by_role(role).count() == 1, role
    assert await page.get_by_role("heading", level=1).count() == 1
    for name in ("At a glance", "CAISO grid status and reserves", "CAISO demand today",
                 "Tomorrow's forecast peak", "7-day resource adequacy margin",
                 "Active and scheduled CAISO notices", "SCE demand-response events",
                 "Data sources", "Delivery health", "Recent notifications"):
        region = page.get_by_role("region", name=name)
        assert await region.count() == 1, name
    status = await page.get_by_role("status").inner_text()
    assert status.startswith("CRITICAL")
    notices = page.get_by_role("region", name="Active and scheduled CAISO notices")
    eea3 = notices.get_by_role("row").filter(has_text="202202696")
    assert "CRITICAL" in await eea3.inner_text() and "17:17 PDT" in await eea3.inner_text()
    assert "52,061 MW at 16:57 PDT" in await page.get_by_role(
        "region", name="CAISO demand today").inner_text()
    assert "degraded: 1 waiting for retry" in await page.get_by_role(
        "region", name="Delivery health").inner_text()
    low = [(text, ratio) for text, ratio in await page.evaluate(CONTRAST_JS) if ratio < 4.5]
    assert not low, f"text below WCAG AA contrast: {low}"
    await check_charts(page, DESKTOP)
    demand = page.get_by_role("img", name="CAISO demand today (Tue Sep 6)")
    assert await demand.count() == 1
    await page.screenshot(path=str(shots_dir(tmp_path) / "status-page.png"), full_page=True)


async def test_readable_on_a_phone(browser: Browser, server: TestServer, tmp_path: Path) -> None:
    page = await open_page(browser, server, PHONE)
    # Nothing wider than the screen: wide tables scroll inside their own box.
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    font = await page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('dd')).fontSize)")
    assert font >= 16
    await check_charts(page, PHONE)
    # The demo's store makes the phone screenshot in docs/ (test_status_demo.py).
    await page.screenshot(path=str(shots_dir(tmp_path) / "status-page-constructed-phone.png"),
                          full_page=True)
