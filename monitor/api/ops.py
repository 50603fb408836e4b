"""The ops server of the non-API roles: `/healthz`, `/readyz` and `/metrics` only.

`capmon produce | decide | deliver` run without the public API, yet every process must be
probed and scraped. This serves the same health routes as the API (monitor.api.health) on
`api.ops_host:api.ops_port` (default 127.0.0.1:9464; set `CAPMON_API_OPS_HOST=0.0.0.0` in a
container), so a probe or a scrape config is the same for every role.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from monitor.api import health
from monitor.api.keys import RUNTIME, SPEC
from monitor.api.openapi import OpenApiSpec
from monitor.api.problems import problem_middleware
from monitor.runtime import Runtime

log = structlog.get_logger(__name__)


def create_ops_app(rt: Runtime) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=4096)
    app[RUNTIME] = rt
    app[SPEC] = OpenApiSpec()
    health.setup(app)
    return app


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    host, port = rt.settings.api.ops_host, rt.settings.api.ops_port
    runner = web.AppRunner(create_ops_app(rt), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("ops_listening", host=host, port=port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
