"""The aiohttp application: `create_app(runtime)` and the `api` role.

Route modules are listed in `API_MODULES`; each has `setup(app)` that adds its routes and
describes them in the OpenAPI spec.
"""

from __future__ import annotations

import asyncio
import importlib

import structlog
from aiohttp import web

from monitor.api.keys import RUNTIME, SPEC
from monitor.api.openapi import OpenApiSpec
from monitor.api.problems import problem_middleware
from monitor.api.server import api_runner, body_middleware
from monitor.runtime import Runtime

log = structlog.get_logger(__name__)

API_MODULES: tuple[str, ...] = (
    "monitor.api.health",
    "monitor.api.status",
    "monitor.api.scrape",
    "monitor.api.replay",
    "monitor.api.twilio_hooks",
    "monitor.api.unsubscribe",
    "monitor.api.tenants",
    "monitor.api.subscriptions",
    "monitor.api.calendar",
    "monitor.api.silences",
    "monitor.api.conditions",
    "monitor.api.sources",
    "monitor.api.notifications",
    "monitor.api.portal",
)


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[problem_middleware, body_middleware],
        client_max_size=rt.settings.api.max_body_bytes,
    )
    app[RUNTIME] = rt
    app[SPEC] = OpenApiSpec()
    for name in API_MODULES:
        importlib.import_module(name).setup(app)
    return app


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    runner = api_runner(create_app(rt), rt.settings.api)
    await runner.setup()
    site = web.TCPSite(runner, rt.settings.api.host, rt.settings.api.port)
    await site.start()
    log.info("api_listening", host=rt.settings.api.host, port=rt.settings.api.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
