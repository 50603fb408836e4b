"""`/healthz`, `/readyz` and `/metrics` on the API and on the ops server of non-API roles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from capmon.cli.roles import role_names
from monitor.api import health
from monitor.api.ops import create_ops_app
from monitor.attributes import SourceHealthAttributes
from monitor.bus import Bus, MemoryBus
from monitor.config import ApiSettings, Settings
from monitor.events import Condition, Kind, Severity, Status, Window
from monitor.runtime import Runtime
from monitor.store import Store, conditions
from tests.status.conftest import ClientFactory
from tests.status.heatwave import NOW


def blind(source: str, since: datetime, why: str, *, status: Status = Status.ACTIVE,
          revision: int = 1) -> Condition:
    return Condition(
        id=f"source.health:{source}", kind=Kind.SOURCE_HEALTH, severity=Severity.WARNING,
        status=status, window=Window(start=since),
        attributes=SourceHealthAttributes(source=source, reason="dns", last_error=why),
        revision=revision, observed_at=since)


@pytest.fixture
def stale_oasis(runtime: Runtime) -> str:
    """This process polls OASIS and just reported it blind."""
    runtime.health.polling(["caiso-oasis", "caiso-stats"])
    runtime.health.report(blind("caiso-oasis", datetime(2022, 9, 6, 16, 12, tzinfo=UTC),
                                "cannot resolve oasis.caiso.com"))
    return "caiso-oasis"


async def test_healthz_is_alive(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_ready_on_a_working_bus_and_store(aiohttp_client: ClientFactory, bus: Bus,
                                                store: Store, runtime: Runtime) -> None:
    from capmon.api import api_app

    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=bus, store=store)
    client = await aiohttp_client(api_app(rt))
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"status": "ready", "failed": [],
                    "checks": {"bus": {"ok": True}, "store": {"ok": True},
                               "tasks": {"ok": True}, "sources": {"ok": True}}}


async def test_a_blind_source_this_process_polls_is_named_with_since_and_why(
        client: TestClient[Any, Any], stale_oasis: str) -> None:
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "degraded" and body["failed"] == ["sources"]
    sources = body["checks"]["sources"]
    assert sources["reason"] == "stale" and sources["stale"] == ["caiso-oasis"]
    assert sources["sources"] == [{
        "source": "caiso-oasis", "label": "CAISO OASIS forecasts",
        "since": "2022-09-06T16:12:00+00:00", "reason": "dns",
        "why": "cannot resolve oasis.caiso.com", "last_success_at": None}]
    assert sources["detail"] == ("capmon cannot see: CAISO OASIS forecasts (caiso-oasis) since "
                                 "2022-09-06 09:12 PDT: cannot resolve oasis.caiso.com")
    assert body["checks"]["bus"] == {"ok": True}


async def test_after_a_restart_the_stored_blindness_keeps_it_degraded(
        client: TestClient[Any, Any], runtime: Runtime) -> None:
    """A fresh process (an empty board) reads what the previous run left in the store; an
    api-only process stays routable (200) while it says so."""
    async with runtime.store.begin() as conn:
        await conditions.record(conn, blind("sce-dr", datetime(2022, 9, 6, 16, 47, tzinfo=UTC),
                                            "cannot resolve www.sce.com"), NOW)
        await conditions.record(conn, blind("caiso-flex", datetime(2022, 9, 6, 10, tzinfo=UTC),
                                            "no route to x", status=Status.ENDED), NOW)
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "degraded"
    assert body["checks"]["sources"]["stale"] == ["sce-dr"]
    # Once this process polls SCE itself, the same blindness makes it not routable.
    runtime.health.polling(["sce-dr"])
    assert (await client.get("/readyz")).status == 503
    # A newer revision from this process's own producer wins over the store's.
    runtime.health.report(blind("sce-dr", datetime(2022, 9, 6, 16, 47, tzinfo=UTC), "x",
                                status=Status.ENDED, revision=2))
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"


async def test_closed_bus_fails_readiness_with_its_reason(
        client: TestClient[Any, Any], runtime: Runtime) -> None:
    await runtime.bus.close()
    body = await (resp := await client.get("/readyz")).json()
    assert resp.status == 503 and body["failed"] == ["bus"] and body["status"] == "not ready"
    assert body["checks"]["bus"] == {"ok": False, "reason": "closed",
                                     "detail": "embedded bus is closed"}


async def test_unreachable_store_fails_readiness(aiohttp_client: ClientFactory,
                                                 runtime: Runtime) -> None:
    from capmon.api import api_app

    # Port 1 on loopback refuses connections: the store's database is down.
    down = Store("postgresql+asyncpg://capmon:x@127.0.0.1:1/capmon")
    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=runtime.bus, store=down)
    try:
        client = await aiohttp_client(api_app(rt))
        body = await (resp := await client.get("/readyz")).json()
    finally:
        await down.close()
    assert resp.status == 503 and body["failed"] == ["store"]
    assert body["checks"]["store"]["reason"] == "unavailable"
    assert body["checks"]["store"]["detail"].startswith("store unavailable: ")
    assert "capmon:x" not in str(body)  # no credentials in a probe answer


class HungBus(MemoryBus):
    async def ping(self) -> None:
        await asyncio.Event().wait()


async def test_hung_bus_times_out_instead_of_hanging(
        aiohttp_client: ClientFactory, runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from capmon.api import api_app

    monkeypatch.setattr(health, "PROBE_TIMEOUT_S", 0.05)
    rt = Runtime(settings=runtime.settings, clock=runtime.clock, bus=HungBus(),
                 store=runtime.store)
    client = await aiohttp_client(api_app(rt))
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
    # Prometheus sees what the probe sees: capmon_ready is computed on each scrape.
    assert 'capmon_ready{check="sources"} 0.0' in metrics
    assert 'capmon_ready{check="store"} 1.0' in metrics
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
