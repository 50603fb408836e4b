"""An API app over the test's store and bus, on a ManualClock set to 2022-09-06 17:30 PDT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from capmon.api import api_app
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import Settings
from monitor.runtime import Runtime
from monitor.store import Store
from tests.status.heatwave import NOW

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def status_clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def runtime(store: Store, status_clock: ManualClock) -> Runtime:
    bus = MemoryBus()
    await bus.start()
    return Runtime(settings=Settings(), clock=status_clock, bus=bus, store=store)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, runtime: Runtime) -> TestClient[Any, Any]:
    app: web.Application = api_app(runtime)
    return await aiohttp_client(app)
