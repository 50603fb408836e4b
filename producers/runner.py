"""The `produce` role: poll every enabled source with one engine until stopped."""

from __future__ import annotations

import asyncio

import structlog

from monitor.runtime import Runtime
from producers.catalog import build_sources
from producers.engine import Engine
from producers.http import HttpFetcher

log = structlog.get_logger(__name__)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    settings = rt.settings.sources
    sources = build_sources(rt.settings)
    if not sources:
        log.warning("no_sources_enabled")
    async with HttpFetcher(rt.clock, user_agent=settings.user_agent, timeout_s=settings.timeout_s,
                           max_response_bytes=settings.max_response_bytes) as fetcher:
        engine = Engine(sources, fetcher, rt.bus, rt.clock,
                        stale_after_intervals=settings.stale_after_intervals)
        await engine.run(stop)
