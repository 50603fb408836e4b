"""Signing in and out: the session cookie's flags, expiry on the injected clock, sign-out and
key revocation ending the session server-side, and the CSRF token every form needs."""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from monitor.api.portal.sessions import COOKIE, SIGN_IN_COOKIE
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ApiSettings, Settings, load_settings
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import portal_sessions, subscriptions
from tests.api.conftest import admin, make_app
from tests.portal.conftest import Browser, csrf_of, location

SMS = {"name": "Night desk", "channel_type": "sms", "phone": "+14155552671",
       "transitions": "issued"}


def _cookie(set_cookie: list[str], name: str) -> Any:
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookie:
        jar.load(header)
    return jar[name]


def session_cookie(set_cookie: list[str]) -> Any:
    return _cookie(set_cookie, COOKIE)


async def test_a_good_key_signs_in_with_a_strict_cookie(client: TestClient[Any, Any],
                                                       tenant: tuple[str, str]) -> None:
    b = Browser(client)
    resp = await b.sign_in(tenant[1])
    assert location(resp) == "/portal/subscriptions"
    cookie = session_cookie(resp.headers.getall("Set-Cookie"))
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/portal" and not cookie["secure"]
    page = await b.get("/portal/subscriptions")
    assert page.status == 200 and "Clean Power Alliance" in await page.text()
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


async def test_only_a_hash_of_the_session_id_is_stored(client: TestClient[Any, Any],
                                                       tenant: tuple[str, str],
                                                       store: Store) -> None:
    resp = await Browser(client).sign_in(tenant[1])
    session_id = session_cookie(resp.headers.getall("Set-Cookie")).value
    async with store.connect() as conn:
        stored = (await conn.execute(sa.select(portal_sessions.c.id_hash))).scalars().all()
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]


async def test_a_bad_key_is_refused_with_the_apis_words(client: TestClient[Any, Any],
                                                        tenant: tuple[str, str]) -> None:
    b = Browser(client)
    for key in ("cm_not-a-key", "", admin()["Authorization"].removeprefix("Bearer ")):
        resp = await b.sign_in(key)
        assert resp.status == 401
        assert "Invalid or revoked API key" in await resp.text()
        assert COOKIE not in resp.cookies
    resp = await b.get("/portal/subscriptions")
    assert location(resp) == "/portal/sign-in"


async def test_the_cookie_is_secure_when_served_over_https(store: Store, clock: ManualClock,
                                                           aiohttp_client: Any,
                                                           tenant: tuple[str, str]) -> None:
    for api, secure in ((ApiSettings(public_url="https://capmon.example"), True),
                        (ApiSettings(public_url="https://capmon.example",
                                     portal_cookie_secure=False), False),
                        (ApiSettings(portal_cookie_secure=True), True)):
        rt = Runtime(settings=Settings(api=api), clock=clock, bus=MemoryBus(), store=store)
        c = await aiohttp_client(make_app(rt))
        form = await c.get("/portal/sign-in")
        token = csrf_of(await form.text())
        assert bool(_cookie(form.headers.getall("Set-Cookie"), SIGN_IN_COOKIE)["secure"]) \
            is secure
        # Sent by hand: a client on plain http would rightly not send back a Secure cookie.
        resp = await c.post("/portal/sign-in", data={"api_key": tenant[1], "csrf": token},
                            headers={"Cookie": f"{SIGN_IN_COOKIE}={token}"},
                            allow_redirects=False)
        assert bool(session_cookie(resp.headers.getall("Set-Cookie"))["secure"]) is secure


async def test_a_session_ends_after_idling_and_at_its_age(browser: Browser,
                                                          clock: ManualClock) -> None:
    # Defaults: 30 minutes idle, 12 hours in all. Each request moves the idle clock on.
    for _ in range(23):
        clock.advance(29 * 60)
        assert (await browser.get("/portal/subscriptions")).status == 200
    clock.advance(29 * 60)  # 11 h 36 min of use, then past 12 h
    assert (await browser.get("/portal/subscriptions")).status == 200
    clock.advance(25 * 60)
    assert location(await browser.get("/portal/subscriptions")) == "/portal/sign-in"


async def test_an_idle_session_ends(browser: Browser, clock: ManualClock) -> None:
    clock.advance(30 * 60)
    assert location(await browser.get("/portal/notifications")) == "/portal/sign-in"
    # A form posted after the end is refused, not acted on.
    resp = await browser.post("/portal/subscriptions/new", SMS)
    assert resp.status == 403 and "session has ended" in await resp.text()


async def test_sign_out_deletes_the_session(browser: Browser, store: Store) -> None:
    session_id = browser.client.session.cookie_jar.filter_cookies(
        browser.client.make_url("/portal/"))[COOKIE].value
    resp = await browser.post("/portal/sign-out")
    assert location(resp) == "/portal/sign-in?signed-out"
    assert session_cookie(resp.headers.getall("Set-Cookie")).value == ""
    async with store.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(portal_sessions))
                ).scalar_one() == 0
    # The old cookie, kept by someone, opens nothing.
    resp = await browser.client.get("/portal/subscriptions", allow_redirects=False,
                                    cookies={COOKIE: session_id})
    assert location(resp) == "/portal/sign-in"


async def test_revoking_the_key_ends_its_sessions(browser: Browser,
                                                  tenant: tuple[str, str]) -> None:
    resp = await browser.client.delete(f"/v1/tenants/{tenant[0]}/keys", headers=admin())
    assert resp.status == 200
    assert location(await browser.get("/portal/subscriptions")) == "/portal/sign-in"


async def test_a_form_without_the_sessions_token_is_refused(browser: Browser,
                                                            store: Store) -> None:
    for token in ("", "forged-token", browser.csrf[:-1]):
        resp = await browser.post("/portal/subscriptions/new", SMS, csrf=token)
        assert resp.status == 403, token
        assert "Form refused" in await resp.text()
    resp = await browser.post("/portal/sign-out", csrf="nope")
    assert resp.status == 403
    async with store.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(subscriptions))
                ).scalar_one() == 0
        assert (await conn.execute(sa.select(sa.func.count()).select_from(portal_sessions))
                ).scalar_one() == 1
    assert (await browser.post("/portal/subscriptions/new", SMS)).status == 200


async def test_the_sign_in_form_needs_its_own_token(client: TestClient[Any, Any],
                                                    tenant: tuple[str, str]) -> None:
    # Another site posting a key of its own tenant, to sign this browser in to it.
    resp = await client.post("/portal/sign-in", data={"api_key": tenant[1], "csrf": "x"},
                             allow_redirects=False)
    assert resp.status == 403 and COOKIE not in resp.cookies
    b = Browser(client)
    await b.get("/portal/sign-in")
    resp = await b.post("/portal/sign-in", {"api_key": tenant[1]}, csrf="other")
    assert resp.status == 403


async def test_every_sign_in_is_a_new_session(client: TestClient[Any, Any],
                                             tenant: tuple[str, str]) -> None:
    b = Browser(client)
    first = session_cookie((await b.sign_in(tenant[1])).headers.getall("Set-Cookie")).value
    assert location(await b.post("/portal/sign-out")).startswith("/portal/sign-in")
    second = session_cookie((await b.sign_in(tenant[1])).headers.getall("Set-Cookie")).value
    assert first != second


def test_the_session_settings_are_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMON_API_PORTAL_IDLE_S", "600")
    monkeypatch.setenv("CAPMON_API_PORTAL_MAX_AGE_S", "3600")
    monkeypatch.setenv("CAPMON_API_PORTAL_COOKIE_SECURE", "true")
    api = load_settings().api
    assert (api.portal_idle_s, api.portal_max_age_s, api.portal_cookie_secure) == \
        (600, 3600, True)
    assert load_settings(api={"portal_cookie_secure": None}).api.portal_cookie_secure is None
