"""`/healthz`, `/readyz` and `/metrics` on the API and on the ops server of non-API roles."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from monitor.api import health
from monitor.api.ops import create_ops_app
from monitor.bus import Bus, MemoryBus
from monitor.cli.roles import role_names
from monitor.config import ApiSettings, Settings
from monitor.metrics import LAST_SUCCESS, SOURCE_STALE
from monitor.runtime import Runtime
from monitor.store import Store
from tests.status.conftest import ClientFactory


@pytest.fixture
def stale_oasis() -> Iterator[str]:
    SOURCE_STALE.labels(source="caiso_oasis").set(1)
    SOURCE_STALE.labels(source="caiso_outlook").set(0)
    LAST_SUCCESS.labels(source="caiso_oasis").set(1662480720)  # 2022-09-06 16:12 UTC
    try:
        yield "caiso_oasis"
    finally:
        for gauge in (SOURCE_STALE, LAST_SUCCESS):
            gauge.clear()


async def test_healthz_is_alive(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_ready_on_a_working_bus_and_store(aiohttp_client: ClientFactory, bus: Bus,
                                                store: Store, runtime: Runtime) -> None:
    from monitor.api.app import create_app

    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=bus, store=store)
    client = await aiohttp_client(create_app(rt))
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"status": "ready", "failed": [],
                    "checks": {"bus": {"ok": True}, "store": {"ok": True},
                               "sources": {"ok": True}}}


async def test_stale_source_is_named_with_its_last_success(
        client: TestClient[Any, Any], stale_oasis: str) -> None:
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "not ready" and body["failed"] == ["sources"]
    sources = body["checks"]["sources"]
    assert sources["reason"] == "stale" and sources["stale"] == ["caiso_oasis"]
    assert "caiso_oasis (last good parse: 2022-09-06T16:12:00+00:00)" in sources["detail"]
    assert "caiso_outlook" not in sources["detail"]
    assert body["checks"]["bus"] == {"ok": True}


async def test_closed_bus_fails_readiness_with_its_reason(
        client: TestClient[Any, Any], runtime: Runtime) -> None:
    await runtime.bus.close()
    body = await (resp := await client.get("/readyz")).json()
    assert resp.status == 503 and body["failed"] == ["bus"]
    assert body["checks"]["bus"] == {"ok": False, "reason": "closed",
                                     "detail": "embedded bus is closed"}


async def test_unreachable_store_fails_readiness(aiohttp_client: ClientFactory,
                                                 runtime: Runtime) -> None:
    from monitor.api.app import create_app

    # Port 1 on loopback refuses connections: the store's database is down.
    down = Store("postgresql+asyncpg://capmon:x@127.0.0.1:1/capmon")
    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=runtime.bus, store=down)
    try:
        client = await aiohttp_client(create_app(rt))
        body = await (resp := await client.get("/readyz")).json()
    finally:
        await down.close()
    assert resp.status == 503 and body["failed"] == ["store"]
    assert body["checks"]["store"]["reason"] == "connect"
    assert body["checks"]["store"]["detail"].startswith("store unreachable:")
    assert "capmon:x" not in str(body)  # no credentials in a probe answer


class HungBus(MemoryBus):
    async def ping(self) -> None:
        await asyncio.Event().wait()


async def test_hung_bus_times_out_instead_of_hanging(
        aiohttp_client: ClientFactory, runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.api.app import create_app

    monkeypatch.setattr(health, "PROBE_TIMEOUT_S", 0.05)
    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=HungBus(),
                 store=runtime.store)
    client = await aiohttp_client(create_app(rt))
    body = await (resp := await client.get("/readyz")).json()
    assert resp.status == 503 and body["failed"] == ["bus"]
    assert body["checks"]["bus"]["reason"] == "timeout"


async def test_ops_server_serves_only_health_routes(
        aiohttp_client: ClientFactory, runtime: Runtime, stale_oasis: str) -> None:
    client = await aiohttp_client(create_ops_app(runtime))
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["failed"] == ["sources"]
    metrics = await (await client.get("/metrics")).text()
    assert 'capmon_source_stale{source="caiso_oasis"} 1.0' in metrics
    assert (await client.get("/")).status == 404
    assert (await client.get("/v1/conditions")).status == 404


def test_non_api_roles_get_the_ops_server() -> None:
    settings = Settings()
    assert role_names("api", settings) == ["api"]
    for role in ("produce", "decide", "deliver"):
        assert role_names(role, settings) == [role, "ops"]
    off = settings.model_copy(update={"api": ApiSettings(ops_enabled=False)})
    assert role_names("decide", off) == ["decide"]


async def test_ops_role_listens_and_stops(runtime: Runtime) -> None:
    import socket

    import aiohttp

    from monitor.api import ops

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = runtime.settings.model_copy(update={
        "api": runtime.settings.api.model_copy(update={"ops_port": port})})
    rt = Runtime(settings=settings, clock=runtime.clock, bus=runtime.bus, store=runtime.store)
    stop = asyncio.Event()
    task = asyncio.create_task(ops.run(rt, stop))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # wait for the listener, with a deadline
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        assert resp.status == 200
                        assert (await resp.json())["status"] == "ready"
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("ops server did not start")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert task.done() and task.exception() is None
