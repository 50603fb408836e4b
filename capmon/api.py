"""The api role: monitor/api's route modules in one application, on `api.host:api.port`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from monitor.api import (
    ack_link,
    calendar,
    conditions,
    escalations,
    health,
    notifications,
    portal,
    replay,
    scrape,
    silences,
    sources,
    status,
    subscriptions,
    tenants,
    twilio_hooks,
    unsubscribe,
    voice_hooks,
)
from monitor.api.app import RouteSetup, create_app, serve
from monitor.runtime import Runtime

ROUTES: tuple[RouteSetup, ...] = (
    health.setup,
    status.setup,
    scrape.setup,
    replay.setup,
    twilio_hooks.setup,
    voice_hooks.setup,
    unsubscribe.setup,
    ack_link.setup,
    tenants.setup,
    subscriptions.setup,
    calendar.setup,
    silences.setup,
    escalations.setup,
    conditions.setup,
    sources.setup,
    notifications.setup,
    portal.setup,
)


def api_app(rt: Runtime) -> web.Application:
    """The whole API, status page and Twilio callbacks included."""
    return create_app(rt, ROUTES)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    await serve(api_app(rt), rt, stop)
