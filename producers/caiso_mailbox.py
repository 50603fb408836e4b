"""CAISO notice emails from an IMAP mailbox -> notice conditions (aioimaplib).

Each sync reads, in UID order, the messages after the last UID recorded for the mailbox's
UIDVALIDITY, parses each, publishes what it changes through a `NoticeBook`, and only then
records its Message-ID in the store. So every message is processed once (a Message-ID seen
before, e.g. after a UIDVALIDITY reset, is skipped) and none is lost: a crash before the record
means the message is read again, and its revisions (numbered by issue time) republish with the
same event ids. A message that does not parse is recorded as `parse_error`, counted and logged
(a broken email is never read as an all-clear), and not retried forever.

Between syncs the client IDLEs when the server offers IDLE, else polls every
`imap.poll_interval_s`; either way the clock wakes it to move notices scheduled -> active ->
ended as their windows pass. On restart the book is rebuilt from the stored notice texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from datetime import UTC
from typing import Any

import aioimaplib
import sqlalchemy as sa
import structlog

from monitor import metrics
from monitor.bus import Bus
from monitor.clock import Clock
from monitor.config import ImapSettings
from monitor.envelope import condition_event
from monitor.errors import BusError, FetchError, ParseError
from monitor.events import Condition
from monitor.source_health import HealthBoard
from monitor.store import Store
from monitor.store.schema import caiso_mailbox_messages as messages
from monitor.topics import CAISO, HEALTH
from producers.caiso_notice_text import parse_notice
from producers.caiso_notices import NoticeBook, message_text
from producers.health import SourceHealth

log = structlog.get_logger(__name__)

SOURCE = "caiso-notices"
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_MAX_MESSAGE = 2 * 1024 * 1024


class NoticeMailbox:
    def __init__(self, settings: ImapSettings, store: Store, bus: Bus, clock: Clock,
                 *, book: NoticeBook | None = None, timeout_s: float = 30.0,
                 stale_after_intervals: int = 3, blind_after_s: float = 30.0,
                 source_url: str | None = None, board: HealthBoard | None = None) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._clock = clock
        self._timeout = timeout_s
        self.book = book or NoticeBook()
        self._source_url = source_url or f"imap://{settings.host}/{settings.mailbox}"
        self._failures = 0
        self.health = SourceHealth(SOURCE, settings.poll_interval_s, stale_after_intervals,
                                   clock.now(), blind_after_s=blind_after_s)
        self._board = board or HealthBoard()
        self._board.polling([SOURCE])

    # -- state across restarts -----------------------------------------------------------------

    def restore_health(self, stored: Condition) -> None:
        """Take up the mailbox's `source.health` condition left by the previous run."""
        self.health.restore(stored)
        if self.health.is_stale:
            metrics.SOURCE_STALE.labels(SOURCE).set(1)
            self._board.report(stored)

    async def restore(self) -> int:
        """Rebuild the notice lifecycle from the notices already processed; returns how many."""
        async with self._store.connect() as conn:
            rows = (await conn.execute(
                sa.select(messages.c.notice_text, messages.c.processed_at)
                .where(messages.c.outcome == "published").order_by(messages.c.seq))).all()
        for text, processed_at in rows:
            if processed_at.tzinfo is None:  # SQLite returns naive UTC
                processed_at = processed_at.replace(tzinfo=UTC)
            try:
                self.book.apply(parse_notice(text), processed_at, self._source_url)
            except ParseError:  # stored by an older parser; it was published then
                log.warning("mailbox_restore_unparseable", source=SOURCE)
        return len(rows)

    async def _last_uid(self, uidvalidity: int) -> int:
        async with self._store.connect() as conn:
            value = (await conn.execute(
                sa.select(sa.func.max(messages.c.uid)).where(
                    messages.c.mailbox == self._settings.mailbox,
                    messages.c.uidvalidity == uidvalidity))).scalar()
        return int(value or 0)

    async def _seen(self, message_id: str) -> bool:
        async with self._store.connect() as conn:
            row = (await conn.execute(sa.select(messages.c.seq).where(
                messages.c.message_id == message_id))).first()
        return row is not None

    async def _record(self, message_id: str, uidvalidity: int, uid: int, outcome: str,
                      error: str | None, text: str | None) -> None:
        async with self._store.begin() as conn:
            await conn.execute(messages.insert().values(
                message_id=message_id, mailbox=self._settings.mailbox, uidvalidity=uidvalidity,
                uid=uid, outcome=outcome, error=error, notice_text=text,
                processed_at=self._clock.now()))

    # -- IMAP ----------------------------------------------------------------------------------

    async def _connect(self) -> Any:
        s = self._settings
        cls = aioimaplib.IMAP4_SSL if s.use_tls else aioimaplib.IMAP4
        client = cls(host=s.host, port=s.port, timeout=self._timeout)
        try:
            await client.wait_hello_from_server()
            assert s.password is not None and s.username is not None
            resp = await client.login(s.username, s.password.get_secret_value())
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await _close(client)
            raise FetchError(f"cannot reach the mailbox at {s.host}:{s.port} "
                             f"({type(exc).__name__})", reason="connect") from exc
        if resp.result != "OK":
            await _close(client)
            raise FetchError(f"the mailbox at {s.host} refused capmon's login", reason="auth",
                             retriable=False)
        return client

    async def _select(self, client: Any) -> int:
        resp = await client.select(self._settings.mailbox)
        if resp.result != "OK":
            raise FetchError(f"cannot select {self._settings.mailbox}", reason="client")
        for line in resp.lines:
            if m := _UIDVALIDITY.search(bytes(line)):
                return int(m.group(1))
        raise FetchError("server gave no UIDVALIDITY", reason="client")

    async def sync(self, client: Any, uidvalidity: int) -> int:
        """Process every new message; returns how many were processed."""
        last = await self._last_uid(uidvalidity)
        resp = await client.uid_search("UID", f"{last + 1}:*")
        if resp.result != "OK":
            raise FetchError("UID SEARCH failed", reason="server")
        uids = sorted({int(tok) for line in resp.lines[:-1]
                       for tok in bytes(line).split() if tok.isdigit()})
        done = 0
        for uid in (u for u in uids if u > last):
            raw = await self._fetch(client, uid)
            await self._process(raw, uidvalidity, uid)
            done += 1
        return done

    async def _fetch(self, client: Any, uid: int) -> bytes:
        resp = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
        if resp.result != "OK":
            raise FetchError(f"UID FETCH {uid} failed", reason="server")
        bodies = [bytes(x) for x in resp.lines if isinstance(x, bytearray)]
        if not bodies:
            raise FetchError(f"UID FETCH {uid} returned no body", reason="server")
        return bodies[0][:_MAX_MESSAGE + 1]

    async def ingest(self, raw: bytes) -> None:
        """Process one RFC 5322 message that arrived outside IMAP (the demo's replayed notices)
        exactly as a fetched one: same parsing, Message-ID dedup, parse-error accounting.
        Recorded under UIDVALIDITY 0, which IMAP never assigns, so the IMAP resume point is
        untouched."""
        await self._process(raw, 0, 0)

    async def _process(self, raw: bytes, uidvalidity: int, uid: int) -> None:
        now = self._clock.now()
        error: ParseError | None = None
        text: str | None = None
        message_id: str | None = None
        try:
            text, message_id = message_text(raw)
        except ParseError as exc:
            error = exc
        message_id = message_id or f"<sha256:{hashlib.sha256(raw).hexdigest()}>"
        if await self._seen(message_id):
            log.info("mailbox_duplicate_skipped", source=SOURCE, message_id=message_id, uid=uid)
            return
        if error is None and text is not None:
            try:
                notice = parse_notice(text)
            except ParseError as exc:
                error = exc
        if error is not None:
            metrics.PARSE_ERRORS.labels(SOURCE, error.reason).inc()
            log.warning("notice_unparseable", source=SOURCE, message_id=message_id, uid=uid,
                        error=str(error))
            await self._record(message_id, uidvalidity, uid, "parse_error", str(error)[:500],
                               None)
            return
        # Filed in a copy: were the publish to fail, the book must not already hold what
        # it filed, or the message read again would change nothing and be recorded unsent.
        book = self.book.copy()
        changed = book.apply(notice, now, self._source_url)
        await self._publish(changed)  # raises BusError: then nothing is recorded
        self.book = book
        await self._record(message_id, uidvalidity, uid, "published", None, text)
        log.info("notice_processed", source=SOURCE, message_id=message_id, uid=uid,
                 conditions=[c.id for c in changed])

    async def _publish(self, conditions: list[Condition]) -> None:
        for c in conditions:
            await self._bus.publish(CAISO, c.id, condition_event(
                c, source=f"/capmon/producers/{SOURCE}"))
            metrics.REVISIONS_PUBLISHED.labels(SOURCE, c.kind.value).inc()

    async def _publish_health(self, condition: Condition) -> None:
        await self._bus.publish(HEALTH, condition.id, condition_event(
            condition, source=f"/capmon/producers/{SOURCE}"))
        metrics.REVISIONS_PUBLISHED.labels(SOURCE, condition.kind.value).inc()
        self.health.published(condition)
        self._board.report(condition)

    async def tick(self) -> None:
        # As for a message: a move the broker refused is made again at the next tick.
        book = self.book.copy()
        await self._publish(book.tick(self._clock.now()))
        self.book = book

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self._settings
        if not s.host or not s.username or s.password is None:
            raise ValueError("imap.host, imap.username and imap.password are required")
        restored = await self.restore()
        log.info("mailbox_started", source=SOURCE, mailbox=self._settings.mailbox,
                 restored=restored)
        while not stop.is_set():
            try:
                await self._session(stop)
                self._failures = 0
            except (FetchError, BusError, aioimaplib.AioImapException, OSError,
                    TimeoutError) as exc:
                self._failures += 1
                reason = getattr(exc, "reason", "connect")
                metrics.FETCH_ERRORS.labels(SOURCE, reason).inc()
                metrics.POLLS.labels(SOURCE, "fetch_error").inc()
                log.warning("mailbox_failed", source=SOURCE, reason=reason, error=str(exc),
                            failures=self._failures)
                stale = self.health.failed(self._clock.now(), reason, str(exc)[:500])
                if self.health.is_stale or stale is not None:
                    metrics.SOURCE_STALE.labels(SOURCE).set(1)
                if stale is not None:
                    with contextlib.suppress(BusError):
                        await self._publish_health(stale)
                # Backoff up to the poll interval: a blip never leaves the mailbox unread longer.
                delay = min(300.0, s.poll_interval_s, 5.0 * 2 ** (self._failures - 1))
                await self._wait(stop, delay, push=None)

    async def _session(self, stop: asyncio.Event) -> None:
        client = await self._connect()
        try:
            uidvalidity = await self._select(client)
            idle = client.has_capability("IDLE")
            while not stop.is_set():
                await self.sync(client, uidvalidity)
                await self.tick()
                metrics.POLLS.labels(SOURCE, "ok").inc()
                metrics.LAST_SUCCESS.labels(SOURCE).set(self._clock.now().timestamp())
                metrics.SOURCE_STALE.labels(SOURCE).set(0)
                self._failures = 0
                if (ended := self.health.succeeded(self._clock.now())) is not None:
                    await self._publish_health(ended)
                if idle:
                    idle_task = await client.idle_start(timeout=self._settings.poll_interval_s)
                    push = asyncio.ensure_future(client.wait_server_push(
                        timeout=self._settings.poll_interval_s + 30))
                    try:
                        await self._wait(stop, self._settings.poll_interval_s, push=push)
                    finally:
                        push.cancel()
                        client.idle_done()
                        # The server ends IDLE with a tagged OK; wait for it before the next
                        # command, or the next command would be read as part of IDLE.
                        await asyncio.wait_for(idle_task, self._timeout)
                else:
                    await self._wait(stop, self._settings.poll_interval_s, push=None)
        finally:
            await _close(client)

    async def _wait(self, stop: asyncio.Event, seconds: float,
                    push: asyncio.Future[Any] | None) -> None:
        """Until `seconds` pass on the clock, the server pushes (IDLE), or stop is set."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._clock.sleep(seconds)),
                                             asyncio.ensure_future(stop.wait())}
        if push is not None:
            waiters.add(push)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if w is not push:
                    w.cancel()


async def _close(client: Any) -> None:
    """Log out politely if the connection allows, and always release the socket."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.logout(), 5)
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()
