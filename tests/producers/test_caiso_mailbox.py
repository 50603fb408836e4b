"""Notice ingestion against a real Dovecot IMAP server (messages delivered by IMAP APPEND).

Pins: each message processed once by Message-ID (a duplicate delivery is skipped), nothing lost
or republished across a restart, a malformed message recorded as a parse error (never an
all-clear), IDLE wakes the client for a message that arrives while it waits, and the clock
moves notices to `ended` when their window passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aioimaplib
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import ImapSettings
from monitor.errors import BusError, FetchError
from monitor.events import Condition, Status
from monitor.store import Store
from monitor.store.schema import caiso_mailbox_messages
from monitor.topics import CAISO, HEALTH
from producers.caiso_mailbox import NoticeMailbox
from tests.producers.dovecot import Dovecot, dovecot  # noqa: F401 - the fixture
from tests.producers.helpers import CAISO_FIXTURES, DownOnceBus, drain

PT = ZoneInfo("America/Los_Angeles")
HEATWAVE = CAISO_FIXTURES / "notices" / "heatwave_2022"


def eml(prefix: str) -> bytes:
    return next(HEATWAVE.glob(f"{prefix}_*.eml")).read_bytes()


async def append(server: Dovecot, *messages: bytes) -> None:
    client = aioimaplib.IMAP4(host=server.host, port=server.port, timeout=10)
    await client.wait_hello_from_server()
    await client.login(server.user, server.password)
    for raw in messages:
        resp = await client.append(raw, mailbox="INBOX")
        assert resp.result == "OK", resp
    await client.logout()


def settings(server: Dovecot) -> ImapSettings:
    return ImapSettings(host=server.host, port=server.port, username=server.user,
                        password=SecretStr(server.password), use_tls=False, poll_interval_s=60)


async def wait_until(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[misc]  # noqa: ASYNC110 - the store and bus, not an event
            await asyncio.sleep(0.05)


async def published(bus: MemoryBus) -> list[Condition]:
    return await drain(bus, CAISO, timeout=0.01)


BAD = (b"From: someone@example.org\r\nSubject: lunch?\r\nMessage-ID: <not-a-notice@x>\r\n\r\n"
       b"Shall we get lunch on Friday?\r\n")


async def test_mailbox_processes_each_message_once_across_restarts(
        dovecot: Dovecot, store: Store) -> None:  # noqa: F811
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT))
    bus = MemoryBus()
    rmo, eea3 = eml("07"), eml("33")
    # The RMO delivered twice (same Message-ID), then a message that is not a notice.
    await append(dovecot, rmo, eea3, rmo, BAD)

    stop = asyncio.Event()
    box = NoticeMailbox(settings(dovecot), store, bus, clock)
    task = asyncio.create_task(box.run(stop))
    try:
        async def two_published() -> bool:
            return len(await published(bus)) >= 2
        await wait_until(two_published)

        async def four_recorded() -> bool:
            async with store.connect() as conn:
                n = (await conn.execute(sa.select(sa.func.count()).select_from(
                    caiso_mailbox_messages))).scalar()
            return n == 3  # RMO, EEA 3, the bad one; the duplicate is skipped
        await wait_until(four_recorded)

        # A notice that arrives while the client IDLEs is processed without any clock tick.
        await append(dovecot, eml("32"))

        async def three_published() -> bool:
            return len(await published(bus)) >= 3
        await wait_until(three_published)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    first = await published(bus)
    assert [c.id for c in first] == ["caiso.notice:202202643", "caiso.notice:202202696",
                                     "caiso.notice:202202694"]
    eea3_condition = first[1]
    assert eea3_condition.status is Status.ACTIVE and eea3_condition.attributes.level == "3"
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(
            caiso_mailbox_messages.c.message_id, caiso_mailbox_messages.c.outcome)
            .order_by(caiso_mailbox_messages.c.seq))).all()
    assert [r.outcome for r in rows] == ["published", "published", "parse_error", "published"]
    assert rows[2].message_id == "<not-a-notice@x>"

    # Restart: the book is rebuilt from the store, nothing is re-read or republished, and the
    # clock passing 20:00 ends the EEA 3 (one new revision, on the same condition id).
    clock.set(datetime(2022, 9, 6, 20, 1, tzinfo=PT))
    stop = asyncio.Event()
    again = NoticeMailbox(settings(dovecot), store, bus, clock)
    task = asyncio.create_task(again.run(stop))
    try:
        async def ended_published() -> bool:
            return any(c.status is Status.ENDED and c.id == "caiso.notice:202202696"
                       for c in await published(bus))
        await wait_until(ended_published)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    after = (await published(bus))[3:]
    assert [(c.id, c.status) for c in after] == [("caiso.notice:202202696", Status.ENDED)]
    assert after[0].revision > eea3_condition.revision
    async with store.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(
            caiso_mailbox_messages))).scalar()
    assert count == 4


async def test_wrong_password_is_a_counted_auth_failure(dovecot: Dovecot, store: Store) -> None:  # noqa: F811
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT))
    bad = settings(dovecot).model_copy(update={"password": SecretStr("wrong")})
    box = NoticeMailbox(bad, store, MemoryBus(), clock)
    with pytest.raises(FetchError) as info:
        await box._connect()
    assert info.value.reason == "auth" and not info.value.retriable


async def test_unreachable_mailbox_turns_stale_then_recovers(dovecot: Dovecot,  # noqa: F811
                                                             store: Store) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT), auto_advance=True)
    bus = MemoryBus()
    down = settings(dovecot).model_copy(update={"port": dead_port})
    box = NoticeMailbox(down, store, bus, clock, stale_after_intervals=3)
    stop = asyncio.Event()
    task = asyncio.create_task(box.run(stop))
    try:
        async def stale() -> bool:
            return box.health.is_stale
        await wait_until(stale)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    [health] = await drain(bus, HEALTH, timeout=0.01)
    assert health.id == "source.health:caiso-notices" and health.status is Status.ACTIVE
    assert health.attributes.reason == "connect"  # type: ignore[attr-defined]
    assert health.attributes.last_error == (  # type: ignore[attr-defined]
        f"cannot reach the mailbox at 127.0.0.1:{dead_port} (ConnectionRefusedError)")
    # Never reached since start: blind after the 30 s grace, not after 3 x 60 s intervals.
    started = datetime(2022, 9, 6, 17, 30, tzinfo=PT)
    assert started + timedelta(seconds=30) <= health.observed_at
    assert health.observed_at < started + timedelta(seconds=60)

    # The same mailbox object reaches the real server: the health condition ends.
    box._settings = settings(dovecot)
    stop = asyncio.Event()
    task = asyncio.create_task(box.run(stop))
    try:
        async def recovered() -> bool:
            return not box.health.is_stale
        await wait_until(recovered)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    statuses = [h.status for h in await drain(bus, HEALTH, timeout=0.01)]
    assert statuses == [Status.ACTIVE, Status.ENDED]


async def test_ingest_without_imap_parses_dedups_and_records(store: Store) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT))
    bus = MemoryBus()
    unused = ImapSettings(host="127.0.0.1", port=1, username="u", password=SecretStr("p"),
                          use_tls=False, poll_interval_s=60)
    box = NoticeMailbox(unused, store, bus, clock)
    await box.ingest(eml("33"))
    await box.ingest(eml("33"))  # the same Message-ID again: skipped
    await box.ingest(BAD)
    first = await published(bus)
    assert [c.id for c in first] == ["caiso.notice:202202696"]  # once, though ingested twice
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(
            caiso_mailbox_messages.c.outcome, caiso_mailbox_messages.c.uidvalidity))).all()
    assert sorted(r.outcome for r in rows) == ["parse_error", "published"]
    assert {r.uidvalidity for r in rows} == {0}


async def test_a_notice_whose_publish_failed_is_published_when_read_again(
        store: Store) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT))
    bus = DownOnceBus()
    unused = ImapSettings(host="127.0.0.1", port=1, username="u", password=SecretStr("p"),
                          use_tls=False, poll_interval_s=60)
    box = NoticeMailbox(unused, store, bus, clock)
    with pytest.raises(BusError):
        await box.ingest(eml("33"))
    await box.ingest(eml("33"))  # not recorded, so read again: its revision goes out now
    assert [c.id for c in await published(bus)] == ["caiso.notice:202202696"]
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(caiso_mailbox_messages.c.outcome))).all()
    assert [r.outcome for r in rows] == ["published"]


async def test_an_end_whose_publish_failed_is_published_at_the_next_tick(store: Store) -> None:
    clock = ManualClock(datetime(2022, 9, 6, 17, 30, tzinfo=PT))
    bus = DownOnceBus()
    bus.down = False
    unused = ImapSettings(host="127.0.0.1", port=1, username="u", password=SecretStr("p"),
                          use_tls=False, poll_interval_s=60)
    box = NoticeMailbox(unused, store, bus, clock)
    await box.ingest(eml("33"))
    clock.set(datetime(2022, 9, 6, 20, 1, tzinfo=PT))  # past the EEA 3's end
    bus.down = True
    with pytest.raises(BusError):
        await box.tick()
    await box.tick()
    assert [(c.id, c.status) for c in await published(bus)] == [
        ("caiso.notice:202202696", Status.ACTIVE), ("caiso.notice:202202696", Status.ENDED)]
