"""Injectable clocks.

Everything that needs "now" or wants to wait takes a `Clock`. Production uses `SystemClock`;
tests and replays use `ManualClock`, whose time only moves when told to, so a two-day heat wave
replays in milliseconds and a test never depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

# CAISO's and SCE's local time: their pages, files and notices speak it, and so do we to users.
PACIFIC = ZoneInfo("America/Los_Angeles")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


async def sleep_or(clock: Clock, seconds: float, *events: asyncio.Event) -> None:
    """Sleep `seconds` on `clock`, or less if one of `events` is set first (a stop signal, a
    nudge); the losing waits are cancelled and reaped, so no sleeper is left on the clock."""
    waits = [asyncio.ensure_future(clock.sleep(seconds)),
             *(asyncio.ensure_future(e.wait()) for e in events)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for w in waits:
            with contextlib.suppress(asyncio.CancelledError):
                await w


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when `advance`/`set` is called (or `auto_advance` is on).

    Sleepers wake in deadline order. With `auto_advance=True`, a sleep jumps the clock straight
    to its deadline once every other task has had a chance to run: replays run as fast as the
    CPU allows while keeping the order of events.
    """

    def __init__(self, start: datetime, *, auto_advance: bool = False) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._origin = self._now
        self._auto = auto_advance
        self._seq = itertools.count()
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._origin).total_seconds()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        deadline = self._now + timedelta(seconds=seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        if self._auto:
            asyncio.get_running_loop().call_soon(self._auto_step)
        await fut

    def _auto_step(self) -> None:
        # Yield a few loop turns first so runnable tasks finish before time jumps.
        asyncio.get_running_loop().create_task(self._auto_jump())

    async def _auto_jump(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        self._drop_cancelled()
        if self._sleepers:
            self.set(self._sleepers[0][0])

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    def set(self, when: datetime) -> None:
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = when
        self._drop_cancelled()
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def waiting(self) -> int:
        """How many sleeps are pending (a replay driver's sign that its actors are parked)."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of a pending sleep, or None."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
