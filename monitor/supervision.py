"""Supervised tasks: a long-lived task of a role (a consumer, a ticker, a scheduler, a poller)
that dies is logged with its traceback, counted, shown by `/readyz`, and restarted with
backoff — never silently gone while the process goes on answering probes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from monitor.clock import Clock, sleep_or
from monitor.metrics import TASK_FAILURES

log = structlog.get_logger(__name__)

# A task that failed less than this long ago makes `/readyz` fail.
FAILED_RECENTLY_S = 60.0


@dataclass(frozen=True)
class Failure:
    task: str
    error: str
    at: float  # the clock's monotonic time
    restarts: int


@dataclass
class TaskBoard:
    """The last failure of each supervised task of this process."""

    failures: dict[str, Failure] = field(default_factory=dict)

    def record(self, task: str, error: str, at: float) -> Failure:
        before = self.failures.get(task)
        failure = Failure(task, error, at, (before.restarts + 1) if before else 1)
        self.failures[task] = failure
        return failure

    def recent(self, now: float) -> list[Failure]:
        return [f for f in self.failures.values() if now - f.at < FAILED_RECENTLY_S]


async def supervise(task: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event,
                    clock: Clock, board: TaskBoard, *, max_backoff_s: float = 30.0) -> None:
    """Run `run()` until `stop`; restart it (1 s, 2 s, ... `max_backoff_s`) whenever it raises
    or returns while `stop` is not set."""
    delay = 1.0
    while not stop.is_set():
        started = clock.monotonic()
        try:
            await run()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("task_failed", task=task, error=error, restart_in_s=delay, exc_info=exc)
        else:
            if stop.is_set():
                return
            error = "returned before stop"
            log.error("task_exited", task=task, restart_in_s=delay)
        TASK_FAILURES.labels(task=task).inc()
        board.record(task, error, clock.monotonic())
        if clock.monotonic() - started > FAILED_RECENTLY_S:
            delay = 1.0  # it ran well for a while: this is a new failure, not the same one
        await sleep_or(clock, delay, stop)
        delay = min(delay * 2, max_backoff_s)
