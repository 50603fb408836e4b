"""The consume loop every consuming role uses: get, handle, acknowledge, drain on stop.

- A record that cannot be decoded, or that the handler rejects as not retriable, is counted
  (`capmon_bus_poison_records_total`), logged with its coordinates and acknowledged, so one bad
  record never blocks a partition.
- A retriable failure (store or bus unavailable) is retried with capped exponential backoff,
  on the injected clock, without acknowledging: nothing is lost.
- When `stop` is set, the loop finishes the records in flight, commits and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog

from monitor.bus.base import Bus, Message, Subscription
from monitor.clock import Clock
from monitor.errors import CapmonError
from monitor.metrics import BUS_CONSUMED, BUS_POISON

log = structlog.get_logger(__name__)

Handler = Callable[[Message], Awaitable[None]]


async def handle_with_retry(message: Message, handler: Handler, clock: Clock, group: str,
                            *, max_backoff_s: float = 30.0) -> bool:
    """Run the handler until it succeeds or fails for good; True if handled."""
    delay = 0.5
    while True:
        try:
            await handler(message)
            return True
        except CapmonError as exc:
            if not exc.retriable:
                _poison(message, group, exc)
                return False
            log.warning("handler_retry", topic=message.topic, partition=message.partition,
                        offset=message.offset, reason=exc.reason, error=str(exc), delay_s=delay)
        except Exception as exc:  # a bug in a handler must not stall the partition forever
            _poison(message, group, exc)
            return False
        await clock.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


def _poison(message: Message, group: str, exc: BaseException) -> None:
    BUS_POISON.labels(topic=message.topic, group=group).inc()
    log.error("record_skipped", topic=message.topic, partition=message.partition,
              offset=message.offset, key=message.key, group=group,
              error=f"{type(exc).__name__}: {exc}")


async def consume(
    bus: Bus,
    topics: Sequence[str],
    group: str,
    handler: Handler,
    stop: asyncio.Event,
    clock: Clock,
    *,
    concurrency: int = 1,
    poll_timeout_s: float = 0.5,
) -> None:
    """Consume until `stop`; with concurrency > 1, records are handled in parallel
    (per-partition order is then not kept: use 1 where order matters)."""
    sub: Subscription = bus.subscribe(topics, group)
    await sub.start()
    slots = asyncio.Semaphore(concurrency)
    inflight: set[asyncio.Task[None]] = set()

    async def run_one(msg: Message) -> None:
        try:
            await handle_with_retry(msg, handler, clock, group)
            await sub.ack(msg)
            BUS_CONSUMED.labels(topic=msg.topic, group=group).inc()
        finally:
            slots.release()

    try:
        while not stop.is_set():
            await slots.acquire()
            msg = await sub.get(timeout=poll_timeout_s)
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
            await sub.close()
