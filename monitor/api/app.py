"""The aiohttp application of the API: `create_app(runtime, routes)` and `serve`.

The route modules are not listed here: the composition root (capmon/api.py) hands their
`setup(app)` functions in, each adding its routes and describing them in the OpenAPI spec.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import structlog
from aiohttp import web

from monitor.api.keys import RUNTIME, SPEC
from monitor.api.openapi import OpenApiSpec
from monitor.api.problems import problem_middleware
from monitor.api.server import api_runner, body_middleware
from monitor.runtime import Runtime

log = structlog.get_logger(__name__)

RouteSetup = Callable[[web.Application], None]


def create_app(rt: Runtime, routes: Iterable[RouteSetup]) -> web.Application:
    app = web.Application(
        middlewares=[problem_middleware, body_middleware],
        client_max_size=rt.settings.api.max_body_bytes,
    )
    app[RUNTIME] = rt
    app[SPEC] = OpenApiSpec()
    for setup in routes:
        setup(app)
    return app


async def serve(app: web.Application, rt: Runtime, stop: asyncio.Event) -> None:
    """Serve `app` on `api.host:api.port` until `stop` is set."""
    runner = api_runner(app, rt.settings.api)
    await runner.setup()
    site = web.TCPSite(runner, rt.settings.api.host, rt.settings.api.port)
    await site.start()
    log.info("api_listening", host=rt.settings.api.host, port=rt.settings.api.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
