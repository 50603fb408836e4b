"""The `produce` role: poll every enabled source with one engine until stopped."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import structlog

from monitor.errors import StoreError
from monitor.events import Condition
from monitor.runtime import Runtime
from monitor.supervision import supervise
from producers.caiso_mailbox import SOURCE as MAILBOX_SOURCE
from producers.caiso_mailbox import NoticeMailbox
from producers.catalog import build_sources
from producers.engine import Engine
from producers.health import stored_health
from producers.http import HttpFetcher
from producers.notice_feed import NoticeFeed

log = structlog.get_logger(__name__)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    settings = rt.settings.sources
    sources = build_sources(rt.settings)
    if not sources:
        log.warning("no_sources_enabled")
    async with HttpFetcher(rt.clock, user_agent=settings.user_agent, timeout_s=settings.timeout_s,
                           max_response_bytes=settings.max_response_bytes) as fetcher:
        engine = Engine(sources, fetcher, rt.bus, rt.clock,
                        stale_after_intervals=settings.stale_after_intervals,
                        blind_after_s=settings.blind_after_s, board=rt.health,
                        tasks=rt.tasks)
        engine.restore(await _previous_health(rt, engine.source_names))
        tasks = [engine.run(stop)]
        enabled = set(settings.enabled)
        if rt.settings.imap.host and (not enabled or MAILBOX_SOURCE in enabled):
            mailbox = NoticeMailbox(rt.settings.imap, rt.store, rt.bus, rt.clock,
                                    timeout_s=settings.timeout_s,
                                    stale_after_intervals=settings.stale_after_intervals,
                                    blind_after_s=settings.blind_after_s, board=rt.health)
            previous = await _previous_health(rt, [MAILBOX_SOURCE])
            if MAILBOX_SOURCE in previous:
                mailbox.restore_health(previous[MAILBOX_SOURCE])
            tasks.append(supervise("produce.mailbox", functools.partial(mailbox.run, stop),
                                   stop, rt.clock, rt.tasks))
        elif not settings.notice_feed_url:
            log.info("notice_mailbox_not_configured")
        if settings.notice_feed_url and (not enabled or MAILBOX_SOURCE in enabled):
            feed_box = NoticeMailbox(rt.settings.imap, rt.store, rt.bus, rt.clock,
                                     source_url=settings.notice_feed_url)
            feed = NoticeFeed(settings.notice_feed_url, feed_box, fetcher, rt.clock,
                              interval_s=rt.settings.imap.poll_interval_s)
            tasks.append(supervise("produce.notice_feed", functools.partial(feed.run, stop),
                                   stop, rt.clock, rt.tasks))
        await asyncio.gather(*tasks)


async def _previous_health(rt: Runtime, sources: Sequence[str]) -> dict[str, Condition]:
    try:
        return await stored_health(rt.store, sources)
    except StoreError as exc:
        # The store is the previous run's memory only; polling goes on without it.
        log.warning("source_health_not_restored", error=type(exc).__name__)
        return {}
