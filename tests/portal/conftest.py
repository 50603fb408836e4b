"""The portal over a live API app (SQLite and PostgreSQL, the embedded bus), and a browser-
like client: it keeps cookies, reads forms' CSRF tokens from the pages and posts them back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from monitor.clock import ManualClock
from monitor.runtime import Runtime
from monitor.store import Store
from tests.api.conftest import make_app, make_runtime, new_tenant

_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _TOKEN.search(html)
    assert m is not None, html
    return m.group(1)


class Browser:
    """One person's browser on the portal (the test client's cookie jar is theirs)."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> ClientResponse:
        resp = await self.client.get(path, allow_redirects=False, **kw)
        text = await resp.text()
        if 'name="csrf"' in text:
            self.csrf = csrf_of(text)
        return resp

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None,
                   *, csrf: str | None = None) -> ClientResponse:
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        token = self.csrf if csrf is None else csrf
        if token:
            fields.append(("csrf", token))
        return await self.client.post(path, data=fields, allow_redirects=False)

    async def sign_in(self, api_key: str) -> ClientResponse:
        await self.get("/portal/sign-in")
        resp = await self.post("/portal/sign-in", {"api_key": api_key})
        if resp.status == 303:
            await self.get(resp.headers["Location"])  # the first page: its CSRF token
        return resp


@pytest.fixture
async def runtime(store: Store, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = make_runtime(store, clock)
    await rt.bus.start()
    yield rt
    await rt.bus.close()


@pytest.fixture
async def client(runtime: Runtime, aiohttp_client: Any) -> TestClient[Any, Any]:
    c: TestClient[Any, Any] = await aiohttp_client(make_app(runtime))
    return c


@pytest.fixture
async def tenant(client: TestClient[Any, Any]) -> tuple[str, str]:
    """(id, API key) of a tenant named "Clean Power Alliance"."""
    return await new_tenant(client, "Clean Power Alliance")


@pytest.fixture
async def browser(client: TestClient[Any, Any], tenant: tuple[str, str]) -> Browser:
    """A browser signed in as `tenant`."""
    b = Browser(client)
    resp = await b.sign_in(tenant[1])
    assert resp.status == 303, await resp.text()
    return b


def location(resp: ClientResponse) -> str:
    assert resp.status == 303, resp.status
    return resp.headers["Location"]
