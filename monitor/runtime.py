"""What every role gets: settings, clock, bus and store, built once and passed down.

A role is an async function `run(rt: Runtime, stop: asyncio.Event) -> None` that returns after
`stop` is set and its in-flight work is drained. `capmon run` runs every role on one Runtime;
`capmon produce|decide|deliver|api` runs one. Which function is which role is the composition
root's to say (capmon/roles.py): `run_roles` is handed the functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from monitor.bus import Bus, make_bus
from monitor.clock import Clock, SystemClock
from monitor.collector import settle_after_start
from monitor.config import Settings
from monitor.logging import register_secret
from monitor.source_health import HealthBoard
from monitor.store import Store
from monitor.supervision import TaskBoard
from monitor.topics import TOPIC_SPECS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    clock: Clock
    bus: Bus
    store: Store
    # What this process's producers see of their sources (the api role reads it).
    health: HealthBoard = field(default_factory=HealthBoard)
    # This process's supervised tasks that died lately (/readyz reads it).
    tasks: TaskBoard = field(default_factory=TaskBoard)


RoleFn = Callable[[Runtime, asyncio.Event], Awaitable[None]]

def register_config_secrets(settings: Settings) -> None:
    register_secret(settings.admin.key)
    register_secret(settings.kafka.sasl_password)
    register_secret(settings.imap.password)
    register_secret(settings.smtp.password)
    register_secret(settings.twilio.auth_token)
    register_secret(settings.api.link_secret)


async def open_runtime(settings: Settings, clock: Clock | None = None,
                       bus: Bus | None = None) -> Runtime:
    register_config_secrets(settings)
    store = Store(settings.store.url, echo=settings.store.echo)
    await store.upgrade()
    bus = bus or make_bus(settings)
    await bus.start()
    await bus.ensure_topics(TOPIC_SPECS)
    return Runtime(settings=settings, clock=clock or SystemClock(), bus=bus, store=store)


async def close_runtime(rt: Runtime) -> None:
    await rt.bus.close()
    await rt.store.close()


async def run_roles(settings: Settings, roles: Mapping[str, RoleFn]) -> int:
    """Run the roles until SIGINT/SIGTERM, then drain them and close cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rt = await open_runtime(settings)
    settle_after_start()
    log.info("capmon_started", roles=list(roles), bus=rt.bus.name,
             store=rt.store.engine.url.render_as_string(hide_password=True))
    tasks: dict[asyncio.Task[None], str] = {
        asyncio.ensure_future(fn(rt, stop)): n for n, fn in roles.items()}
    code = 0
    try:
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task, name in tasks.items():
            if not task.done() or stop.is_set():
                continue
            # A role ends only when told to: one that raised or returned on its own left
            # its work undone, so the process says so and exits non-zero for a restart.
            error = None if task.cancelled() else task.exception()
            log.error("role_failed", role=name,
                      error=repr(error) if error else "returned before stop")
            code = 1
        stop.set()
        # Roles drain in-flight work after stop; give them a bounded time.
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            log.warning("role_drain_timeout", role=tasks[task])
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    finally:
        await close_runtime(rt)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("capmon_stopped", code=code)
    return code
