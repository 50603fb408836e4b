"""Hostile or broken input gets a 4xx problem with a clear text, never a 500: raw bytes in a
bearer token, host names DNS cannot carry, port 0, control characters in names; a store
that is away answers 503 with Retry-After; a URL's password never reaches a printout."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url

from capmon.cli import main
from monitor.clock import ManualClock
from monitor.store import Store
from tests.api.conftest import admin, bearer, make_app, make_runtime, new_tenant
from tests.faults.proxy import FlakyProxy

HOOK = {"name": "desk", "match": {"kinds": ["caiso.eea"]},
        "channel": {"type": "webhook", "url": "https://hooks.cca.example/capmon"}}


async def raw_request(client: TestClient[Any, Any], head: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


async def test_a_bearer_token_of_raw_bytes_is_a_401(client: TestClient[Any, Any]) -> None:
    status, answer = await raw_request(client, (
        b"GET /v1/subscriptions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer cm_\xff\xfe\xfd\r\nConnection: close\r\n\r\n"))
    assert status == 401, answer
    assert b"application/problem+json" in answer


@pytest.mark.parametrize("url", ["https://localhost../", "https://" + "a" * 64 + ".example/",
                                 "https://a..b.example/x", "https://8.8.8.8:0/"])
async def test_host_names_dns_cannot_carry_and_port_0_are_refused(
        client: TestClient[Any, Any], url: str) -> None:
    _t, key = await new_tenant(client, f"Hostile {url[-12:]}")
    resp = await client.post("/v1/subscriptions", headers=bearer(key),
                             json={**HOOK, "channel": {"type": "webhook", "url": url}})
    assert resp.status == 422, await resp.text()
    assert "malformed URL" in json.dumps(await resp.json())


@pytest.mark.parametrize("name", ["desk\r\nBcc: everyone@example.com", "nul\x00", "del\x7f"])
async def test_control_characters_are_refused_in_every_name(
        client: TestClient[Any, Any], name: str) -> None:
    _t, key = await new_tenant(client, f"Names {name.encode()!r}")
    resp = await client.post("/v1/subscriptions", headers=bearer(key), json={**HOOK, "name": name})
    assert resp.status == 422, await resp.text()
    resp = await client.post("/v1/tenants", json={"name": name}, headers=admin())
    assert resp.status == 422, await resp.text()


@pytest.mark.postgres
async def test_a_store_that_is_away_answers_503_with_retry_after(
        pg_url: str, clock: ManualClock, aiohttp_client: Any) -> None:
    url = make_url(pg_url)
    proxy = FlakyProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    store = Store(url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False))
    await store.upgrade()
    rt = make_runtime(store, clock)
    await rt.bus.start()
    try:
        client: TestClient[Any, Any] = await aiohttp_client(make_app(rt))
        _t, key = await new_tenant(client, "Outage CCA")
        await proxy.down()
        resp = await client.get("/v1/subscriptions", headers=bearer(key))
        assert resp.status == 503 and resp.headers["Retry-After"] == "5"
        assert resp.content_type == "application/problem+json"
        await proxy.up()
        assert (await client.get("/v1/subscriptions", headers=bearer(key))).status == 200
    finally:
        await rt.bus.close()
        await store.close()
        await proxy.down()


def test_config_show_never_prints_a_url_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAPMON_STORE_URL", "postgresql+asyncpg://capmon:pa55-w0rd@db:5432/capmon")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "pa55-w0rd" not in out and "postgresql+asyncpg://capmon:**********@db:5432" in out
