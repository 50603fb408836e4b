"""The API's server over raw sockets, as `capmon api` runs it (short timeouts set here): what
aiohttp itself refuses is a problem too, slow or incomplete requests are cut off, and a
client that goes away is logged as such, quietly."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.api.server import api_runner
from monitor.clock import ManualClock
from monitor.config import ApiSettings
from monitor.logging import configure_logging
from monitor.store import Store
from monitor.store import tenants as tenant_store
from tests.api.conftest import make_app, make_runtime

IDLE_S, BODY_S = 1.0, 0.5


@dataclass
class Live:
    port: int
    key: str
    log: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@pytest.fixture
async def live(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Live]:
    log = io.StringIO()
    configure_logging("debug", "json", log)
    # The server is the same whatever the store: SQLite only.
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'capmon.db'}")
    await store.upgrade()
    async with store.begin() as conn:
        _t, key = await tenant_store.create_tenant(conn, "Raw CCA", None, clock.now())
    rt = make_runtime(store, clock)
    api = ApiSettings(idle_timeout_s=IDLE_S, body_timeout_s=BODY_S, max_body_bytes=4096)
    rt = replace(rt, settings=rt.settings.model_copy(update={"api": api}))
    await rt.bus.start()
    runner = api_runner(make_app(rt), api)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Live(port, key, log)
    finally:
        await runner.cleanup()
        await rt.bus.close()
        await store.close()


async def exchange(live: Live, data: bytes, *, within: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    start = time.monotonic()
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), within)  # read() returns at EOF only
    writer.close()
    return answer, time.monotonic() - start


def head_and_problem(answer: bytes) -> tuple[int, bytes, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), answer
    return int(head.split(b" ", 2)[1]), head, json.loads(body)


@pytest.mark.parametrize(("request_head", "detail"), [
    (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", "Invalid header token"),
    (b"POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
     "Invalid character in Content-Length"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "Got more than 8190 bytes"),
])
async def test_what_aiohttp_cannot_parse_is_a_problem_logged_without_a_traceback(
        live: Live, request_head: bytes, detail: str) -> None:
    answer, _ = await exchange(live, request_head)
    status, _, problem = head_and_problem(answer)
    assert status == 400 and problem["status"] == 400
    assert problem["detail"].startswith(detail), problem
    [line] = [ln for ln in live.lines() if ln.get("status") == 400]
    assert line["event"] == "api_bad_request" and line["level"] == "info"
    assert "exception" not in line and not any(ln["level"] == "error" for ln in live.lines())


async def test_a_body_that_never_arrives_is_a_408_and_the_connection_closes(live: Live) -> None:
    answer, took = await exchange(live, (
        b"POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + live.key.encode() + b"\r\nContent-Length: 100\r\n\r\n{"))
    status, _, problem = head_and_problem(answer)
    assert status == 408, problem
    assert "did not arrive within 0.5 s" in problem["detail"]
    # The body timeout, then at most as long again draining what was refused.
    assert BODY_S <= took < 2 * BODY_S + 1


async def test_a_huge_content_length_is_refused_at_once(live: Live) -> None:
    answer, took = await exchange(live, (
        b"POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + live.key.encode() +
        b"\r\nContent-Length: 1000000000000\r\n\r\n"))
    status, head, problem = head_and_problem(answer)
    assert status == 413 and problem["detail"] == "at most 4096 bytes"
    assert b"connection: close" in head.lower()
    assert took < BODY_S + 1


async def test_partial_headers_are_cut_off_after_the_idle_timeout(live: Live) -> None:
    answer, took = await exchange(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert answer == b""
    assert IDLE_S <= took < IDLE_S + 1.5


async def test_an_idle_keep_alive_connection_is_closed(live: Live) -> None:
    answer, took = await exchange(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert IDLE_S <= took < IDLE_S + 1.5


async def test_a_client_that_goes_away_mid_body_is_logged_quietly(live: Live) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(b"POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + live.key.encode() +
                 b"\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    for _ in range(50):
        if any(ln["event"] == "api_client_disconnected" for ln in live.lines()):
            break
        await asyncio.sleep(0.02)
    [gone] = [ln for ln in live.lines() if ln["event"] == "api_client_disconnected"]
    assert gone["level"] == "info" and gone["path"] == "/v1/subscriptions"
    assert not [ln for ln in live.lines() if ln["level"] in ("warning", "error")
                or "exception" in ln]
