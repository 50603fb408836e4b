"""The consume loop every consuming role uses: get, handle, acknowledge, drain on stop.

Nothing is acknowledged and forgotten. What happens to a record the handler fails on:

- the store or the bus is unavailable (a retriable `CapmonError`): retried with capped
  exponential backoff on the injected clock, for as long as it takes — the outage is not the
  record's fault, and every record behind it would meet it too;
- the record cannot be decoded (a `BusError` with reason `schema`): dead-lettered at once;
- anything else (a bug, a constraint the record breaks): retried `max_attempts` times with
  backoff, then dead-lettered.

A dead letter is the record as it arrived (key, value, headers) plus `capmon-dlq-*` headers
saying where it came from and why; it is counted (`capmon_bus_dead_letters_total`), logged,
and can be replayed onto its topic (`capmon dlq replay`). Only once the dead letter is
accepted by the bus is the record acknowledged.
When `stop` is set, the loop finishes the records in flight, commits and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from monitor.bus.base import Bus, Consumer, Message
from monitor.bus.dead_letters import dead_letter
from monitor.clock import Clock, sleep_or
from monitor.errors import BusError, CapmonError
from monitor.metrics import BUS_CONSUMED, BUS_DEAD_LETTERS, BUS_RETRIES

log = structlog.get_logger(__name__)

Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    # Tries of a record that fails for a reason of its own, before it is dead-lettered.
    max_attempts: int = 5
    first_backoff_s: float = 0.5
    max_backoff_s: float = 30.0


async def handle_with_retry(message: Message, handler: Handler, clock: Clock, group: str,
                            dead_letters: str, bus: Bus, stop: asyncio.Event,
                            policy: RetryPolicy = RetryPolicy()) -> bool:
    """Run the handler until it succeeds or the record is dead-lettered: True, the record
    may be acknowledged. False: `stop` came first; the record stays for the next owner."""
    delay = policy.first_backoff_s
    tries = failures = 0
    while True:
        tries += 1
        try:
            await handler(message)
            return True
        except CapmonError as exc:
            if not exc.retriable:
                failures += 1
                if isinstance(exc, BusError) and exc.reason == "schema":
                    failures = policy.max_attempts  # no retry will make it readable
            error: BaseException = exc
        except Exception as exc:  # a bug in a handler: a few more tries, then dead letters
            failures += 1
            error = exc
        if failures >= policy.max_attempts:
            return await _dead_letter(message, group, dead_letters, bus, clock, stop, error,
                                      tries, policy)
        BUS_RETRIES.labels(topic=message.topic, group=group).inc()
        log.warning("handler_retry", topic=message.topic, partition=message.partition,
                    offset=message.offset, key=message.key, group=group,
                    error=f"{type(error).__name__}: {error}", failures=failures, delay_s=delay)
        await sleep_or(clock, delay, stop)
        if stop.is_set():
            return False
        delay = min(delay * 2, policy.max_backoff_s)


async def _dead_letter(message: Message, group: str, topic: str, bus: Bus, clock: Clock,
                       stop: asyncio.Event, error: BaseException, attempts: int,
                       policy: RetryPolicy) -> bool:
    letter = dead_letter(message, group, error, attempts, clock.now())
    delay = policy.first_backoff_s
    while True:
        try:
            await bus.publish_records(topic, [letter])
            break
        except CapmonError as exc:  # the record stays unacknowledged until its letter is out
            log.warning("dead_letter_retry", topic=topic, error=str(exc), delay_s=delay)
            await sleep_or(clock, delay, stop)
            if stop.is_set():
                return False
            delay = min(delay * 2, policy.max_backoff_s)
    BUS_DEAD_LETTERS.labels(topic=message.topic, group=group).inc()
    log.error("record_dead_lettered", topic=message.topic, partition=message.partition,
              offset=message.offset, key=message.key, group=group, dead_letters=topic,
              attempts=attempts, error=f"{type(error).__name__}: {error}")
    return True


async def consume(
    bus: Bus,
    topics: Sequence[str],
    group: str,
    handler: Handler,
    stop: asyncio.Event,
    clock: Clock,
    *,
    dead_letters: str,
    concurrency: int = 1,
    poll_timeout_s: float = 0.5,
    policy: RetryPolicy = RetryPolicy(),
) -> None:
    """Consume until `stop`; with concurrency > 1, records are handled in parallel
    (per-partition order is then not kept: use 1 where order matters)."""
    consumer: Consumer = bus.subscribe(topics, group)
    await consumer.start()
    slots = asyncio.Semaphore(concurrency)
    inflight: set[asyncio.Task[None]] = set()

    async def run_one(msg: Message) -> None:
        try:
            if await handle_with_retry(msg, handler, clock, group, dead_letters, bus, stop,
                                       policy):
                await consumer.ack(msg)
                BUS_CONSUMED.labels(topic=msg.topic, group=group).inc()
        finally:
            slots.release()

    try:
        while not stop.is_set():
            await slots.acquire()
            msg = await consumer.get(timeout=poll_timeout_s)
            if msg is None:
                slots.release()
                continue
            if concurrency == 1:
                await run_one(msg)
            else:
                task = asyncio.create_task(run_one(msg))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
    finally:
        for task in inflight:
            task.cancel()
        with contextlib.suppress(Exception):
            await consumer.close()
