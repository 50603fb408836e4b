"""capmon started with no route to CAISO or SCE, as a new user meets it, on a replay clock.

Every role runs in this process (api, produce, decide, deliver) on the embedded bus and a
SQLite store, with every source URL on a loopback port nothing listens on. A tenant is made
through the API with an admin contact (subscribed to capmon's health by email) and subscribes
a webhook and a phone. Within a minute of scenario time `/readyz` is degraded, the status
page (read in headless Chromium) opens with the banner and says the SCE panel is unknown, and
each sink (an SMTP server, a signature-checking webhook receiver, the Twilio stand-in) has
heard "capmon cannot see". Then the replay server comes up on that port, serving the 2022
heat wave's real files, and each hears "capmon sees ... again"; `/readyz` is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_string, policy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser

from capmon.api import api_app
from capmon.demo import DEFAULT_SCENARIO
from capmon.demo.bus import ObservedBus
from capmon.demo.driver import TimeDriver
from capmon.demo.sinks import Received, SmsSink, SmtpSink, WebhookSink
from capmon.replay import ReplayServer, load_timeline
from capmon.roles import ROLES
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.topics import TOPIC_SPECS
from tests.status.test_status_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    browser,
    chromium,
    shots_dir,
)

ADMIN = "admin-key-blind-start-0123456789"
SOURCES = ("caiso-stats", "caiso-demand", "caiso-flex", "caiso-oasis", "caiso-ra-outlook",
           "sce-dr")
LABELS = ("CAISO Today's Outlook", "CAISO demand", "CAISO Flex Alerts", "CAISO OASIS forecasts",
          "CAISO RA outlook", "SCE DR events")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


@dataclass
class Capmon:
    clock: ManualClock
    driver: TimeDriver
    api: str
    port: int  # where every source is, and nothing listens until the replay server starts
    hooks: WebhookSink
    smtp: SmtpSink
    sms: SmsSink
    rt: Runtime

    def received(self) -> list[Received]:
        return self.hooks.received + self.smtp.received + self.sms.received


@pytest.fixture
async def capmon(tmp_path: Path) -> AsyncIterator[Capmon]:
    timeline = load_timeline(DEFAULT_SCENARIO)
    clock = ManualClock(timeline.start + timedelta(days=8, hours=9, minutes=47))
    port = closed_port()
    source = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        hooks = WebhookSink(clock)
        await hooks.start()
        stack.push_async_callback(hooks.close)
        smtp = SmtpSink(clock)
        smtp_port = await smtp.start()
        stack.push_async_callback(smtp.close)
        sms = SmsSink(clock, account_sid="AC" + uuid.uuid4().hex,
                      auth_token=secrets.token_hex(16))
        await sms.start()
        stack.push_async_callback(sms.stop)
        api_sock = bound_socket()
        api = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
        settings = Settings(
            store={"url": f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}"},
            admin={"key": ADMIN},
            api={"public_url": api, "ops_enabled": False, "link_secret": "s" * 32},
            sources={
                "caiso_outlook_url": f"{source}/outlook",
                "caiso_flex_url":
                    f"{source}/TodaysOutlookApi/api/EmergencyNotices/v2/ActiveFlexAlertEvents",
                "caiso_oasis_url": f"{source}/oasisapi/SingleZip",
                "sce_api_url": f"{source}/m.dr.website/resteasy/services",
                "sce_html_url": f"{source}/dr.website", "sce_mode": "api", "jitter": False},
            smtp={"host": "127.0.0.1", "port": smtp_port},
            twilio={"account_sid": sms.account_sid, "auth_token": sms.auth_token,
                    "from_number": "+15005550006", "api_base_url": sms.base},
            webhook={"allow_hosts": ["127.0.0.1"], "allow_http": True},
            deliver={"scheduler_interval_s": 3600.0, "concurrency": 1},
            decide={"max_tick_s": 3600.0, "refresh_s": 3600.0})
        bus = ObservedBus(MemoryBus())
        await bus.start()
        stack.push_async_callback(bus.close)
        await bus.ensure_topics(TOPIC_SPECS)
        store = Store(settings.store.url)
        await store.upgrade()
        stack.push_async_callback(store.close)
        rt = Runtime(settings=settings, clock=clock, bus=bus, store=store)
        app = web.AppRunner(api_app(rt), access_log=None)
        await app.setup()
        await web.SockSite(app, api_sock).start()
        stack.push_async_callback(app.cleanup)
        stop = asyncio.Event()
        tasks = []
        for name in ("produce", "decide", "deliver"):
            tasks.append(asyncio.ensure_future(ROLES[name](rt, stop)))
        driver = TimeDriver(clock, bus, busy=sms.in_flight)
        try:
            yield Capmon(clock, driver, api, port, hooks, smtp, sms, rt)
        finally:
            stop.set()
            for _ in range(200):
                if all(t.done() for t in tasks):
                    break
                if (deadline := clock.next_deadline()) is not None:
                    clock.set(deadline)
                await asyncio.sleep(0.01)
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert not [r for r in results if isinstance(r, Exception)], results


async def subscribe(c: Capmon) -> None:
    """As the README does it, through the API."""
    async with aiohttp.ClientSession(c.api) as http:
        async with http.post("/v1/tenants", headers={"Authorization": f"Bearer {ADMIN}"},
                             json={"name": "CPA", "admin_contact": "ops@cpa.example"}) as r:
            assert r.status == 201, await r.text()
            tenant = await r.json()
        assert tenant["health_subscription"]["id"] is not None
        key = {"Authorization": f"Bearer {tenant['api_key']}"}
        hook = {"name": "risk system", "match": {"kinds": ["source.health"]},
                "channel": {"type": "webhook", "url": f"{c.hooks.base}/hooks/risk"}}
        async with http.post("/v1/subscriptions", headers=key, json=hook) as r:
            assert r.status == 201, await r.text()
            c.hooks.secrets["risk"] = (await r.json())["secret"]
        phone = {"name": "desk phone", "match": {"kinds": ["source.health"]},
                 "channel": {"type": "sms", "phone": "+16265550142"}}
        async with http.post("/v1/subscriptions", headers=key, json=phone) as r:
            assert r.status == 201, await r.text()


async def readyz(c: Capmon) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{c.api}/readyz") as r:
        return r.status, await r.json()


def webhook_items(c: Capmon) -> list[tuple[str, str, str]]:
    """(transition, source, status) of every item the signed webhooks carried."""
    out = []
    for r in c.hooks.received:
        assert r.signature_verified
        for item in json.loads(r.body)["data"]["items"]:
            cond = item["condition"]
            out.append((item["transition"], cond["attributes"]["source"], cond["status"]))
    return out


def mail_text(r: Received) -> str:
    msg = message_from_string(r.body, policy=policy.default)
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_a_capmon_that_cannot_see_says_so_at_once_and_when_it_sees_again(
        capmon: Capmon, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    c = capmon
    start = c.clock.now()
    await c.driver.calibrate()
    await subscribe(c)
    await c.driver.run_until(start + timedelta(seconds=60))

    # /readyz: degraded at once (not after 15-45 minutes), each source with since and why.
    code, body = await readyz(c)
    assert code == 503 and body["status"] == "degraded"
    sources = body["checks"]["sources"]
    assert sorted(sources["stale"]) == sorted(SOURCES)
    for s in sources["sources"]:
        assert s["why"] == f"127.0.0.1:{c.port} refused the connection", s
        assert datetime.fromisoformat(s["since"]) == start  # blind since start

    # The status page, as a person reads it.
    page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    resp = await page.goto(c.api + "/")
    assert resp is not None and resp.status == 200
    banner = await page.get_by_role("alert").inner_text()
    assert banner.startswith("capmon cannot see 6 of 6 sources")
    for label in LABELS:
        assert label in banner
    assert f"127.0.0.1:{c.port} refused the connection" in banner
    dr = await page.get_by_role("region", name="SCE demand-response events").inner_text()
    assert "No active or scheduled" not in dr
    assert "Unknown: capmon cannot see SCE DR events since" in dr
    assert "there may be events it has not seen" in dr
    headline = await page.get_by_role("status").inner_text()
    assert headline.startswith("UNKNOWN") and "No active" not in headline
    await page.screenshot(path=str(shots_dir(tmp_path) / "status-page-blind.png"),
                          full_page=True)

    # Every subscriber heard it within the minute, through its own channel; the other
    # sources follow in one grouped message after decide's group interval (60 s).
    first = {r.channel: r.received_at - start for r in reversed(c.received())}
    assert set(first) == {"webhook", "email", "sms"}
    assert all(t <= timedelta(seconds=60) for t in first.values()), first
    await c.driver.run_until(start + timedelta(minutes=3))
    assert {(t, s) for t, s, _ in webhook_items(c)} == {("issued", s) for s in SOURCES}
    mails = [mail_text(r) for r in c.smtp.received if r.recipient == "ops@cpa.example"]
    assert mails and all("capmon cannot see" in m for m in mails)
    assert "capmon cannot see SCE DR events since" in "".join(mails)
    assert c.sms.received and all(r.body.startswith("capmon cannot see")
                                  for r in c.sms.received)

    # The sources come back: the replay server of the 2022 heat wave, on their port.
    heard = len(c.received())
    replay = ReplayServer(load_timeline(DEFAULT_SCENARIO), c.clock, port=c.port)
    await replay.start()
    try:
        await c.driver.run_until(c.clock.now() + timedelta(minutes=10))
        code, body = await readyz(c)
        assert code == 200 and body["status"] == "ready", body
        resp = await page.goto(c.api + "/")
        assert resp is not None and await page.get_by_role("alert").count() == 0
        dr = await page.get_by_role("region", name="SCE demand-response events").inner_text()
        assert "Unknown" not in dr
    finally:
        await replay.close()
    again = c.received()[heard:]
    assert {(t, s) for t, s, st in webhook_items(c) if t == "ended"} == {
        ("ended", s) for s in SOURCES}
    assert all(st == "ended" for t, _, st in webhook_items(c) if t == "ended")
    new_mail = [mail_text(r) for r in again if r.channel == "email"]
    assert new_mail and "capmon sees SCE DR events again (blind" in "".join(new_mail)
    assert any(r.body.startswith("capmon sees") for r in again if r.channel == "sms")
