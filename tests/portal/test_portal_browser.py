"""The portal end to end in Debian's headless Chromium (Playwright, /usr/bin/chromium, no
browser download), against the API app and the real deliver role on the embedded bus:
sign in, create a webhook subscription pointing at a local receiver, send a test the receiver
verifies with `standardwebhooks`, read its attempt in the log, rotate the secret, sign out;
another tenant's subscription is not found, and forged form posts, from another site or
without the token, are refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright

from capmon.api import api_app
from consumers.deliver.deliverer import run as deliver
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings, WebhookSettings
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store import subscriptions as sub_store
from monitor.store import tenants as tenant_store
from monitor.subscriptions import SubscriptionSpec
from tests.deliver.receivers import WebhookReceiver
from tests.status.test_status_browser import ARGS, CHROMIUM, PHONE, shots_dir


class Stack:
    def __init__(self, server: TestServer, store: Store, key: str, theirs: str) -> None:
        self.server, self.store, self.key, self.theirs = server, store, key, theirs

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def stack(tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
                ) -> AsyncIterator[Stack]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}")
    await store.upgrade()
    # Receivers refuse signatures 5 minutes from their wall clock: start at the real time.
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with store.begin() as conn:
        _cpa, key = await tenant_store.create_tenant(conn, "Clean Power Alliance", None,
                                                     clock.now())
        other, _ = await tenant_store.create_tenant(conn, "Other CCA", None, clock.now())
        theirs, _ = await sub_store.create(conn, other.id, SubscriptionSpec.model_validate({
            "name": "Their desk", "channel": {"type": "webhook",
                                              "url": "https://hooks.other.example/x"}}),
                                           clock.now())
    # The API's SSRF guard refuses loopback unless the operator admits it, as for local
    # development (docs/api.md).
    settings = Settings(webhook=WebhookSettings(allow_hosts=("127.0.0.1",), allow_http=True))
    bus = MemoryBus()
    await bus.start()
    rt = Runtime(settings=settings, clock=clock, bus=bus, store=store)
    server = await aiohttp_server(api_app(rt))
    stop = asyncio.Event()
    role = asyncio.create_task(deliver(rt, stop))
    try:
        yield Stack(server, store, key, theirs.id)
    finally:
        stop.set()
        await asyncio.wait_for(role, 30)
        await bus.close()
        await store.close()


@pytest.fixture
async def attacker(aiohttp_server: Callable[..., Awaitable[TestServer]],
                   stack: Stack) -> TestServer:
    """Another site (localhost, not 127.0.0.1) whose page posts a form to the portal."""
    async def evil(request: web.Request) -> web.Response:
        action = request.query["action"]
        return web.Response(content_type="text/html", text=(
            f'<form method="post" action="{action}"><input name="confirm" value="yes">'
            '<input name="csrf" value="guessed"><button>Win a prize</button></form>'))

    app = web.Application()
    app.router.add_get("/", evil)
    return await aiohttp_server(app, host="127.0.0.1")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium", pytrace=False)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def log_shows_delivered(page: Page, key: str) -> str:
    """The notification's page once deliver has recorded its attempt (reloaded as a person
    would)."""
    async with asyncio.timeout(30):
        while True:
            text = await page.get_by_role("region", name="Attempts").inner_text()
            if "delivered" in text:
                return text
            await asyncio.sleep(0.3)
            await page.reload()


async def test_a_tenant_manages_a_webhook_in_the_browser(
        browser: Browser, stack: Stack, receiver: WebhookReceiver, attacker: TestServer,
        tmp_path: Path) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    resp = await page.goto(stack.url("/portal"))
    assert resp is not None and resp.url.endswith("/portal/sign-in")
    await page.get_by_label("Tenant API key").fill(stack.key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Subscriptions").wait_for()
    assert "Clean Power Alliance" in await page.get_by_role("banner").inner_text()

    # Create a webhook subscription to the local receiver.
    await page.get_by_role("link", name="New subscription").click()
    await page.get_by_label("Name", exact=True).fill("Risk system")
    await page.get_by_role("radio", name="webhook").check()
    await page.get_by_label("Webhook URL").fill(f"{receiver.base}/ok")
    await page.get_by_label("caiso.eea", exact=True).check()
    await page.get_by_role("button", name="Create").click()
    secret = await page.get_by_role("status").filter(has_text="signing secret") \
        .locator("code").inner_text()
    assert secret.startswith("whsec_")
    receiver.secrets["/ok"] = [secret]

    # A test notification, verified by the receiver with the reference library.
    await page.get_by_role("button", name="Send a test").click()
    await page.get_by_text("Test notification queued").wait_for()
    key = page.url.split("/portal/notifications/")[1].split("?")[0]
    await receiver.wait_for(lambda: bool(receiver.on("/ok")), 30)
    got = receiver.on("/ok")[0]
    assert got.webhook_id == key and got.verified == [True]
    assert b"capmon test notification for Risk system" in got.body
    attempts = await log_shows_delivered(page, key)
    assert re.search(r"\b1\b.*delivered.*\b200\b", attempts.replace("\n", " ")), attempts
    await page.goto(stack.url("/portal/notifications"))
    row = page.get_by_role("row").filter(has_text="capmon test notification for Risk system")
    assert "delivered" in await row.inner_text()
    await page.screenshot(path=str(shots_dir(tmp_path) / "portal-log.png"), full_page=True)

    # Rotate: a new secret, shown once.
    await page.get_by_role("link", name="Risk system").first.click()
    await page.get_by_label("Old secret stays valid for").select_option("3600")
    await page.get_by_role("button", name="Rotate the signing secret").click()
    rotated = await page.get_by_role("status").filter(has_text="New webhook signing secret") \
        .locator("code").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    mine = page.url.split("?")[0].removesuffix("/rotate-secret")
    sub_id = mine.rsplit("/", 1)[1]
    async with stack.store.connect() as conn:
        assert await sub_store.secret_of(conn, sub_id) == rotated

    # Another tenant's subscription is not found, even by its id.
    resp = await page.goto(stack.url(f"/portal/subscriptions/{stack.theirs}"))
    assert resp is not None and resp.status == 404

    # A form from another site: the session cookie is not sent with it (SameSite), and its
    # token is not the session's.
    evil = attacker.make_url("/").with_host("localhost").with_query(
        action=stack.url(f"/portal/subscriptions/{sub_id}/delete"))
    await page.goto(str(evil))
    async with page.expect_response(lambda r: "/delete" in r.url) as forged:
        await page.get_by_role("button", name="Win a prize").click()
    assert (await forged.value).status == 403
    assert "Not signed in" in await page.inner_text("main")
    # The portal's own form with its token taken out.
    await page.goto(mine)
    await page.evaluate("""() => document.querySelector('form[action$="/delete"] '
                                                        + 'input[name=csrf]').remove()""")
    await page.get_by_label("delete for good").check()
    async with page.expect_response(lambda r: "/delete" in r.url) as stripped:
        await page.get_by_role("button", name="Delete").click()
    assert (await stripped.value).status == 403
    assert "Form refused" in await page.inner_text("main")
    async with stack.store.connect() as conn:
        assert await sub_store.get(conn, sub_id) is not None

    # Readable on a phone: nothing wider than the screen (wide tables scroll in their box).
    phone = await context.new_page()
    await phone.set_viewport_size(PHONE)
    for name, path in (("form", "/portal/subscriptions/new"), ("log", "/portal/notifications"),
                       ("subscription", mine)):
        await phone.goto(stack.url(path) if path.startswith("/") else path)
        overflow = await phone.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, name
        await phone.screenshot(path=str(shots_dir(tmp_path) / f"portal-{name}-phone.png"),
                               full_page=True)
    await phone.close()

    # Sign out: the session is gone.
    await page.goto(mine)
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You are signed out.").wait_for()
    resp = await page.goto(stack.url("/portal/subscriptions"))
    assert resp is not None and resp.url.endswith("/portal/sign-in")
