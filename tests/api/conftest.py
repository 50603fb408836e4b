"""A live API over a real store (SQLite and PostgreSQL) and the embedded bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from capmon.api import api_app
from monitor.api.common import LOOKUP
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import AdminSettings, Settings, WebhookSettings
from monitor.runtime import Runtime
from monitor.store import Store

ADMIN_KEY = "admin-key-for-tests-0123456789"
# Names the tests resolve, and to what: no test ever asks a real DNS server.
FAKE_DNS = {
    "hooks.cca.example": ["93.184.216.34"],
    "intranet.cca.example": ["10.20.30.40"],
    "rebind.cca.example": ["93.184.216.34", "192.168.1.10"],
    "v6.cca.example": ["2606:2800:220:1:248:1893:25c8:1946"],
    "cgnat.cca.example": ["100.100.1.2"],
}


async def fake_lookup(host: str) -> Sequence[str]:
    if host in FAKE_DNS:
        return FAKE_DNS[host]
    if host == "localhost":
        return ["127.0.0.1", "::1"]
    # Anything else schemathesis invents resolves to a public documentation-free address.
    return ["93.184.216.35"]


# Every channel configured (the Twilio account is a stand-in's: nothing here sends SMS).
CHANNELS: dict[str, Any] = {
    "api": {"link_secret": "link-secret-for-tests-0123456789"},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "twilio-token-for-tests",
               "from_number": "+15005550006"}}


def make_runtime(store: Store, clock: ManualClock, *, channels: bool = True,
                 **webhook: Any) -> Runtime:
    settings = Settings(admin=AdminSettings(key=SecretStr(ADMIN_KEY)),
                        webhook=WebhookSettings(**webhook), **(CHANNELS if channels else {}))
    return Runtime(settings=settings, clock=clock, bus=MemoryBus(), store=store)


def make_app(rt: Runtime) -> web.Application:
    app = api_app(rt)
    app[LOOKUP] = fake_lookup
    return app


@pytest.fixture
async def client(store: Store, clock: ManualClock,
                 aiohttp_client: Any) -> AsyncIterator[TestClient[Any, Any]]:
    rt = make_runtime(store, clock)
    await rt.bus.start()
    c: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
    yield c
    await rt.bus.close()


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_tenant(client: TestClient[Any, Any], name: str) -> tuple[str, str]:
    resp = await client.post("/v1/tenants", json={"name": name}, headers=admin())
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return body["id"], body["api_key"]
