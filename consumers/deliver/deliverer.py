"""The `deliver` role: notifications from the bus to webhooks, SMS and email, exactly as the
ledger allows.

Two feeders run one pipeline:
- the consumer of `capmon.notifications.v1`, which admits and attempts each notification and
  acknowledges the record only once the ledger holds its fate (settled, scheduled for a retry,
  or claimed under a lease);
- the retry scheduler, which every `scheduler_interval_s` of the injected clock picks up what
  is due in the store: retries, deferred sends, replays, and claims whose sender died.
A restart therefore keeps every schedule, and a crash can only duplicate a send that was in
flight, under the same idempotency key. Each process is a sender with a heartbeat
(monitor/ledger/senders.py): the claims of one that died are taken over `takeover_s` after its
last beat, not after the lease; one that stops cleanly hands its claims back.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import structlog

from consumers.deliver.ledger import DeliverLedger
from consumers.deliver.limits import Limits
from consumers.deliver.stages import (
    Attempt,
    Deps,
    Stage,
    announce,
    check_endpoint,
    claim,
    gate,
    in_slot,
    record,
    run_stages,
    send,
)
from consumers.notifiers import build_notifiers
from consumers.notifiers.base import Notifier
from monitor import ledger
from monitor.bus import Message
from monitor.bus.runner import consume
from monitor.clock import sleep_or
from monitor.errors import BusError, StoreError
from monitor.metrics import DLQ_SIZE, RETRY_QUEUE
from monitor.notifications import Notification, notification_from_record
from monitor.runtime import Runtime
from monitor.supervision import supervise

log = structlog.get_logger(__name__)

GAUGE_REFRESH_S = 15.0


def build_pipeline(d: Deps) -> list[Stage]:
    return [
        claim(d),            # admit the key once, lease it if due, read its endpoint
        check_endpoint(d),   # a gone or inactive subscription: settle as suppressed
        gate(d),             # circuit breaker, endpoint and channel token buckets
        in_slot(d.sends, [   # at most `concurrency` sends whose outcome is not committed:
            send(d),         #   one attempt through the channel's notifier
            record(d),       #   attempt row + verdict + endpoint health, one group commit
        ]),
        announce(d),         # dead letter, endpoint-disabled notice
    ]


class Deliverer:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.stages = build_pipeline(deps)
        self._slots = asyncio.Semaphore(deps.settings.inflight)
        # Set when a notification from the bus was left for later (a retry, a deferral): it
        # may be due before the scheduler's next pass.
        self.wake = asyncio.Event()
        # The earliest retry this process was told of without seeing it committed (a late
        # provider status handled by the API beside it): the scheduler sleeps no later.
        self.expected: datetime | None = None

    def expect(self, at: datetime) -> None:
        """A retry falls due at `at` (`ledger.on_rescheduled`)."""
        self.expected = at if self.expected is None else min(self.expected, at)
        self.wake.set()

    async def handle(self, message: Message) -> None:
        """Bus handler: returns once the ledger holds the notification's fate."""
        try:
            n = notification_from_record(message.record)
        except ValueError as exc:  # pydantic: a record that isn't a valid notification
            raise BusError(f"invalid notification: {exc.__class__.__name__}",
                           reason="schema") from exc
        await self.submit(n)

    async def submit(self, n: Notification) -> None:
        """Admit and attempt one notification (what a bus record triggers)."""
        done = await self._run(Attempt(notification=n, now=self.deps.clock.now(),
                                       from_bus=True))
        if done is None or done.state not in ledger.SETTLED:
            self.wake.set()  # a retry or deferral is now due at some time: recompute

    async def _run(self, attempt: Attempt) -> Attempt | None:
        """Run the stages; the settled attempt, or None when a stage stopped it early."""
        return await run_stages(self.stages, attempt)

    async def run_due(self) -> int:
        """One scheduler pass: attempt everything due now; returns how many were started."""
        d = self.deps
        now = d.clock.now()
        async with d.store.connect() as conn:
            entries = await ledger.due(conn, now, limit=d.settings.inflight,
                                       sender=d.ledger.sender)
        tasks = []
        for entry in entries:
            await self._slots.acquire()
            tasks.append(asyncio.create_task(self._run_slot(Attempt(
                notification=entry.notification(), now=d.clock.now(), from_bus=False))))
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def _run_slot(self, attempt: Attempt) -> None:
        try:
            await self._run(attempt)
        except Exception as exc:  # keep the scheduler alive; the lease brings the key back
            log.error("scheduled_attempt_failed", key=attempt.key,
                      error=f"{type(exc).__name__}: {exc}")
        finally:
            self._slots.release()

    async def refresh_gauges(self) -> None:
        async with self.deps.store.connect() as conn:
            counts = await ledger.count_by_channel_state(conn)
        for channel in ("webhook", "sms", "voice", "email"):
            RETRY_QUEUE.labels(channel=channel).set(counts.get((channel, "failed"), 0))
        DLQ_SIZE.set(sum(v for (_c, s), v in counts.items() if s == "dead"))


async def scheduler_loop(deliverer: Deliverer, stop: asyncio.Event) -> None:
    """Every `scheduler_interval_s` at most, and sooner when this process knows the next
    retry is due earlier (or has just scheduled one): retries go out on time without the
    interval having to be short. The interval still bounds how late work scheduled by
    another deliver process, or a dead sender's lease, is picked up."""
    d = deliverer.deps
    interval = d.settings.scheduler_interval_s
    gauges_at = d.clock.monotonic() - GAUGE_REFRESH_S
    while not stop.is_set():
        delay = interval
        deliverer.wake.clear()
        try:
            started = await deliverer.run_due()
            if d.clock.monotonic() - gauges_at >= GAUGE_REFRESH_S:
                await deliverer.refresh_gauges()
                gauges_at = d.clock.monotonic()
            if started:
                continue  # more may be due right away
            async with d.store.connect() as conn:
                due = await ledger.next_due_at(conn)
            if due is not None:
                due = due if due.tzinfo is not None else due.replace(tzinfo=UTC)
            now = d.clock.now()
            if deliverer.expected is not None and deliverer.expected <= now:
                deliverer.expected = None  # its pass has run: the ledger speaks for it now
            if deliverer.expected is not None:
                due = deliverer.expected if due is None else min(due, deliverer.expected)
            if due is not None:
                delay = min(interval, max(0.01, (due - now).total_seconds()))
        except Exception as exc:  # store briefly down: try again next tick
            log.warning("scheduler_pass_failed", error=f"{type(exc).__name__}: {exc}")
        await sleep_or(d.clock, delay, stop, deliverer.wake)


async def heartbeat_loop(d: Deps, stop: asyncio.Event) -> None:
    """Say this sender is alive every `heartbeat_s`: its claims are its own while it beats.
    A beat the store refuses is retried on the next one (the claims' lease still holds)."""
    while not stop.is_set():
        try:
            async with d.store.begin() as conn:
                await ledger.beat(conn, d.ledger.sender, d.clock.now())
        except StoreError as exc:
            log.warning("heartbeat_failed", error=str(exc))
        await sleep_or(d.clock, d.settings.heartbeat_s, stop)


async def _retire(d: Deps) -> None:
    try:
        async with d.store.begin() as conn:
            released = await ledger.retire(conn, d.ledger.sender, d.clock.now())
    except StoreError as exc:  # the claims fall to a takeover once the beat is old
        log.warning("sender_retire_failed", error=str(exc))
        return
    if released:
        log.info("claims_released", notifications=released)


def make_deps(rt: Runtime, notifiers: dict[str, Notifier] | None = None) -> Deps:
    return Deps(settings=rt.settings.deliver, store=rt.store, bus=rt.bus, clock=rt.clock,
                notifiers=notifiers if notifiers is not None
                else build_notifiers(rt.settings, rt.clock),
                limits=Limits(rt.settings.deliver, rt.clock),
                ledger=DeliverLedger(rt.store, rt.clock, rt.settings.deliver.claim_lease_s,
                                     sender=ledger.Sender(timedelta(
                                         seconds=rt.settings.deliver.takeover_s)),
                                     linger_s=rt.settings.deliver.commit_linger_s),
                rng=random.Random())


async def run(rt: Runtime, stop: asyncio.Event,
              notifiers: dict[str, Notifier] | None = None) -> None:
    deps = make_deps(rt, notifiers)
    for notifier in deps.notifiers.values():
        await notifier.start()
    deliverer = Deliverer(deps)
    s = rt.settings.deliver
    log.info("deliver_started", channels=sorted(deps.notifiers), topic=s.topic, group=s.group,
             concurrency=s.concurrency, inflight=s.inflight)
    unlisten = ledger.on_rescheduled(deliverer.expect)
    scheduler = asyncio.create_task(supervise(
        "deliver.scheduler", lambda: scheduler_loop(deliverer, stop), stop, rt.clock, rt.tasks))
    heartbeat = asyncio.create_task(supervise(
        "deliver.heartbeat", lambda: heartbeat_loop(deps, stop), stop, rt.clock, rt.tasks))
    try:
        await supervise("deliver.consumer", lambda: consume(
            rt.bus, [s.topic], s.group, deliverer.handle, stop, rt.clock,
            dead_letters=s.dlq_topic, concurrency=s.inflight), stop, rt.clock, rt.tasks)
    finally:
        stop.set()
        unlisten()
        await asyncio.gather(scheduler, heartbeat, return_exceptions=True)
        await _retire(deps)
        for notifier in deps.notifiers.values():
            await notifier.close()
        log.info("deliver_stopped")
