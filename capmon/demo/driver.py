"""Moves a replay's ManualClock only when capmon has finished reacting to the present.

`ManualClock(auto_advance=True)` jumps as soon as the event loop has run a few turns, which is
right for pure in-memory code but wrong for a whole deployment: a poll waiting on the replay
server, a SQLite commit in a thread or a Kafka round trip is not a runnable task, and the
scenario would race ahead of it (a notification decided for 17:26 delivered at 21:00). The
driver instead advances to the next sleeper's deadline only when the system is *quiescent*:

- every record published has been acknowledged by every consumer group (`ObservedBus`);
- no side work is in flight (`busy()` hooks: the Twilio stand-in's status callbacks);
- every long-lived loop is parked on the clock: the number of pending sleeps is back to the
  level it had when the system last settled (an actor that is polling, deciding or sending
  has no pending sleep, so the count is short while it works);

and all of that holds across a few event-loop turns. If the system makes no progress for
`stall_s` of real time while looking busy (an actor that ended for good), the level is
re-learned, logged, and the replay goes on.

With `speed` set, scenario time also never runs faster than `speed` x real time. Once settled,
and before the clock moves, `on_settled` (the demo's look at acknowledgements and escalation
steps) sees the present as capmon left it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from capmon.demo.bus import ObservedBus
from monitor.clock import ManualClock

log = structlog.get_logger(__name__)


@dataclass
class DriverStats:
    steps: int = 0
    settle_waits: int = 0
    stalls: int = 0
    relearned: list[int] = field(default_factory=list)


class TimeDriver:
    def __init__(self, clock: ManualClock, bus: ObservedBus, *,
                 busy: Callable[[], int] = lambda: 0, speed: float | None = None,
                 stall_s: float = 2.0, confirm_turns: int = 8,
                 on_settled: Callable[[], Awaitable[None]] | None = None) -> None:
        self.clock = clock
        self.bus = bus
        self.busy = busy
        self.on_settled = on_settled
        self.speed = speed
        self.stall_s = stall_s
        self.confirm_turns = confirm_turns
        self.parked = 0
        self.stats = DriverStats()
        self._real0 = time.monotonic()
        self._scen0 = clock.now()

    def _fingerprint(self) -> tuple[int, int, int, int]:
        return (sum(self.bus.published.values()), sum(self.bus.acked.values()),
                self.clock.waiting(), self.busy())

    def _quiet(self) -> bool:
        return (self.bus.backlog() == 0 and self.busy() == 0
                and self.clock.waiting() >= self.parked)

    async def calibrate(self, plateau_s: float = 0.5) -> int:
        """Learn how many sleeps are pending when every actor is parked: the count once it
        has held still, with nothing in flight, for `plateau_s` of real time."""
        last = None
        since = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            fp = self._fingerprint()
            if fp != last or self.bus.backlog() or self.busy():
                last, since = fp, now
                continue
            if now - since >= plateau_s:
                self.parked = self.clock.waiting()
                log.info("replay_calibrated", parked=self.parked)
                # Pacing counts from here: start-up is not scenario time.
                self._real0, self._scen0 = time.monotonic(), self.clock.now()
                return self.parked

    async def settle(self) -> None:
        """Return once the system is quiescent (see the module docstring)."""
        started = last_change = time.monotonic()
        last = self._fingerprint()
        spins = 0
        while True:
            if self._quiet():
                for _ in range(self.confirm_turns):
                    await asyncio.sleep(0)
                if self._quiet() and self._fingerprint() == last:
                    # An actor that took on extra sleeps (a retry backoff) raises the level.
                    self.parked = max(self.parked, self.clock.waiting())
                    return
            spins += 1
            # Spin a few turns for in-loop work, then yield real time to threads and sockets.
            await asyncio.sleep(0 if spins % 4 else 0.0005)
            fp = self._fingerprint()
            now = time.monotonic()
            if fp != last:
                last, last_change = fp, now
                continue
            if now - last_change > self.stall_s and self.bus.backlog() == 0 \
                    and self.busy() == 0:
                self.stats.stalls += 1
                self.parked = self.clock.waiting()
                self.stats.relearned.append(self.parked)
                log.warning("replay_parked_level_relearned", parked=self.parked,
                            waited_s=round(now - started, 2))
                return
            self.stats.settle_waits += 1

    async def step(self, end: datetime) -> bool:
        """Settle, then move the clock to the next deadline (not past `end`); False when
        nothing is left to do before `end`."""
        await self._settled()
        deadline = self.clock.next_deadline()
        if deadline is None or deadline > end:
            if self.clock.now() < end:
                await self._pace(end)
                self.clock.set(end)
            return False
        await self._pace(deadline)
        self.clock.set(deadline)
        self.stats.steps += 1
        return True

    async def run_until(self, end: datetime, stop: asyncio.Event | None = None) -> None:
        """Step to `end`, or until `stop` is set (a replay interrupted by a signal ends at
        the present, settled)."""
        while not (stop is not None and stop.is_set()) and await self.step(end):
            pass
        await self._settled()

    async def _settled(self) -> None:
        await self.settle()
        if self.on_settled is not None:
            await self.on_settled()

    async def _pace(self, target: datetime) -> None:
        if self.speed is None:
            return
        due = self._real0 + (target - self._scen0).total_seconds() / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
