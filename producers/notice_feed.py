"""CAISO notice emails from an HTTP mail drop (`sources.notice_feed_url`) -> notice conditions.

The feed is a JSON listing `{"messages": [{"name", "url", "delivered_at"}...], "next_at"}` of
RFC 5322 messages, as the replay server's `/replay/notices` serves it. Each message new to
this process is fetched and handed to `NoticeMailbox.ingest`, the IMAP mailbox's own path:
same parser, same Message-ID dedup in the store (so a restart re-reads the listing without
publishing anything twice), same parse-error accounting. `next_at`, when the drop knows it,
plays the part of an IMAP IDLE push: the feed wakes when the next message arrives instead of
polling every minute. Between messages the clock wakes it for notice windows that open or
close (`NoticeBook.next_change`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import structlog

from monitor import metrics
from monitor.clock import Clock, sleep_or
from monitor.errors import BusError, FetchError, ParseError
from producers.caiso_mailbox import SOURCE, NoticeMailbox
from producers.source import Fetcher

log = structlog.get_logger(__name__)


def parse_listing(body: bytes) -> tuple[list[tuple[str, str]], datetime | None]:
    """(name, url) of every listed message, and when the next one arrives (if known)."""
    try:
        doc: Any = json.loads(body)
        items = [(str(m["name"]), str(m["url"])) for m in doc["messages"]]
        next_at = doc.get("next_at")
        when = datetime.fromisoformat(next_at) if next_at else None
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"notice feed listing: {type(exc).__name__}: {exc}",
                         reason="schema") from None
    if when is not None and when.tzinfo is None:
        raise ParseError("notice feed listing: next_at has no UTC offset", reason="schema")
    return items, when


class NoticeFeed:
    def __init__(self, url: str, mailbox: NoticeMailbox, fetcher: Fetcher, clock: Clock,
                 *, interval_s: float = 60.0) -> None:
        self.url = url
        self.mailbox = mailbox
        self._fetcher = fetcher
        self._clock = clock
        self._interval = timedelta(seconds=interval_s)
        self._seen: set[str] = set()
        self._failures = 0

    async def sync(self) -> datetime | None:
        """Ingest every listed message not read yet; returns when the next one arrives."""
        listing = await self._fetcher.get(self.url)
        items, next_at = parse_listing(listing.body)
        for name, url in items:
            if name in self._seen:
                continue
            message = await self._fetcher.get(urljoin(self.url, url))
            await self.mailbox.ingest(message.body)
            self._seen.add(name)
        await self.mailbox.tick()
        return next_at

    async def run(self, stop: asyncio.Event) -> None:
        restored = await self.mailbox.restore()
        log.info("notice_feed_started", source=SOURCE, url=self.url, restored=restored)
        while not stop.is_set():
            now = self._clock.now()
            wake = now + self._interval
            try:
                next_at = await self.sync()
            except (FetchError, ParseError, BusError) as exc:
                self._failures += 1
                reason = getattr(exc, "reason", "fetch")
                counter = metrics.PARSE_ERRORS if isinstance(exc, ParseError) \
                    else metrics.FETCH_ERRORS
                counter.labels(SOURCE, reason).inc()
                metrics.POLLS.labels(SOURCE, "parse_error" if isinstance(exc, ParseError)
                                     else "fetch_error").inc()
                log.warning("notice_feed_failed", source=SOURCE, reason=reason, error=str(exc),
                            failures=self._failures)
                backoff = timedelta(seconds=min(300.0, 5.0 * 2 ** (self._failures - 1)))
                wake = min(wake, now + backoff)
            else:
                self._failures = 0
                metrics.POLLS.labels(SOURCE, "ok").inc()
                metrics.LAST_SUCCESS.labels(SOURCE).set(self._clock.now().timestamp())
                now = self._clock.now()
                for t in (next_at, self.mailbox.book.next_change(now)):
                    if t is not None and t > now:
                        wake = min(wake, t)
            await self._sleep_until(wake, stop)

    async def _sleep_until(self, when: datetime, stop: asyncio.Event) -> None:
        delay = (when - self._clock.now()).total_seconds()
        if delay > 0:
            await sleep_or(self._clock, delay, stop)
