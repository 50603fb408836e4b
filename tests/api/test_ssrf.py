"""SSRF: webhook targets that would reach inside the network are refused, with a clear error,
at subscribe time (API) and at connect time (the guarded session deliver uses)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.config import WebhookSettings
from monitor.netguard import UnsafeUrlError, check_url, guarded_session, request_no_redirect
from tests.api.conftest import bearer, fake_lookup, new_tenant

STRICT = WebhookSettings()

REFUSED = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[::1]/hook", "loopback"),
    ("https://[fd12:3456::1]/hook", "unique-local"),
    ("https://[::ffff:10.0.0.1]/hook", "private"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://intranet.cca.example/hook", "10.20.30.40"),  # a name resolving to 10.x
    ("https://rebind.cca.example/hook", "192.168.1.10"),  # one of its answers is private
    ("https://localhost/hook", "loopback"),
    ("http://hooks.cca.example/hook", "https"),
    ("https://user:pw@hooks.cca.example/hook", "credentials"),
    ("https://100.64.0.1/hook", "carrier-grade NAT"),
    ("https://100.127.255.254/hook", "carrier-grade NAT"),
    ("https://[::ffff:100.64.0.1]/hook", "carrier-grade NAT"),
    ("https://[2002:a9fe:a9fe::1]/hook", "metadata"),  # 6to4 of 169.254.169.254
    ("https://[2002:a00:1::1]/hook", "private address (10.0.0.1"),  # 6to4 of 10.0.0.1
    ("https://[64:ff9b::a00:1]/hook", "NAT64"),
    ("https://[64:ff9b:1::a00:1]/hook", "NAT64"),
    ("https://cgnat.cca.example/hook", "100.100.1.2"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
async def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrlError) as err:
        await check_url(url, STRICT, fake_lookup)
    assert why in str(err.value)


async def test_public_hosts_pass() -> None:
    await check_url("https://hooks.cca.example/capmon", STRICT, fake_lookup)
    await check_url("https://v6.cca.example:8443/capmon", STRICT, fake_lookup)
    # Just outside 100.64.0.0/10, and a public IPv4 address carried by 6to4.
    for url in ("https://100.128.0.1/", "https://[2002:5db8:d822::1]/"):
        await check_url(url, STRICT, fake_lookup)


async def test_allow_list_admits_local_development() -> None:
    dev = WebhookSettings(allow_hosts=("127.0.0.1",))
    await check_url("http://127.0.0.1:9000/hook", dev, fake_lookup)
    with pytest.raises(UnsafeUrlError):
        await check_url("http://10.0.0.1:9000/hook", dev, fake_lookup)


@pytest.mark.parametrize(("url", "why"), REFUSED[:10])
async def test_api_refuses_with_a_clear_problem(client: TestClient[Any, Any], url: str,
                                                why: str) -> None:
    _tid, key = await new_tenant(client, "SSRF CCA")
    spec = {"name": "hook", "channel": {"type": "webhook", "url": url}}
    resp = await client.post("/v1/subscriptions", json=spec, headers=bearer(key))
    assert resp.status == 422
    body = await resp.json()
    assert body["title"] == "Webhook URL refused"
    assert why in body["detail"]
    listed = await (await client.get("/v1/subscriptions", headers=bearer(key))).json()
    assert listed["items"] == []


async def test_redirects_are_refused() -> None:
    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.router.add_post("/hook", moved)
    settings = WebhookSettings(allow_hosts=("127.0.0.1",))
    async with TestServer(app, host="127.0.0.1") as server, guarded_session(settings) as s:
        url = str(server.make_url("/hook"))
        with pytest.raises(UnsafeUrlError) as err:
            await request_no_redirect(s, "POST", url, settings, data=b"{}")
    assert err.value.reason == "redirect"
    assert "redirects are not followed" in str(err.value)


async def test_connect_time_guard_refuses_loopback_names() -> None:
    """A name that resolves to loopback at send time is refused before any connection."""
    hits = 0

    async def hook(_request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app, host="127.0.0.1") as server, guarded_session(STRICT) as s:
        url = f"https://localhost:{server.port}/hook"
        with pytest.raises(UnsafeUrlError) as err:
            await request_no_redirect(s, "POST", url, STRICT)
        assert "loopback" in str(err.value)
        with pytest.raises(UnsafeUrlError):
            await request_no_redirect(s, "POST", f"https://127.0.0.1:{server.port}/hook",
                                      STRICT)
    assert hits == 0
