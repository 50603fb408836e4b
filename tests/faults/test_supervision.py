"""A long-lived task that dies is logged, counted, shown by /readyz and restarted; a role that
ends on its own makes the process exit non-zero. Never silently gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from monitor.api.health import readiness
from monitor.bus import MemoryBus
from monitor.clock import ManualClock
from monitor.config import AdminSettings, Settings, StoreSettings
from monitor.metrics import TASK_FAILURES
from monitor.runtime import Runtime, run_roles
from monitor.store import Store
from monitor.supervision import FAILED_RECENTLY_S, TaskBoard, supervise

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


async def test_a_task_that_raises_or_returns_is_restarted_with_backoff() -> None:
    clock = ManualClock(T0)
    board = TaskBoard()
    stop = asyncio.Event()
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(clock.monotonic())
        if len(runs) == 1:
            raise OSError("connection refused")
        if len(runs) == 2:
            return  # a loop that ends on its own is a failure too
        await stop.wait()

    failures = TASK_FAILURES.labels(task="test.flaky")
    before = failures._value.get()
    task = asyncio.create_task(supervise("test.flaky", flaky, stop, clock, board))
    for _ in range(20):
        await asyncio.sleep(0)
    assert runs == [0.0], "waits its backoff before a restart"
    clock.advance(1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert runs == [0.0, 1.0]
    clock.advance(2)  # the backoff doubled
    for _ in range(20):
        await asyncio.sleep(0)
    assert runs == [0.0, 1.0, 3.0]
    assert failures._value.get() == before + 2
    failure = board.failures["test.flaky"]
    assert (failure.error, failure.restarts) == ("returned before stop", 2)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_readyz_fails_while_a_task_failed_lately(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    await store.upgrade()
    clock = ManualClock(T0)
    bus = MemoryBus()
    await bus.start()
    rt = Runtime(settings=Settings(admin=AdminSettings(key=SecretStr("x" * 20))), clock=clock,
                 bus=bus, store=store)
    try:
        body, code = await readiness(rt)
        assert (code, body["checks"]["tasks"]) == (200, {"ok": True})
        rt.tasks.record("decide.ticker", "StoreError: store unavailable", clock.monotonic())
        body, code = await readiness(rt)
        assert code == 503 and body["status"] == "not ready" and "tasks" in body["failed"]
        assert body["checks"]["tasks"]["tasks"] == ["decide.ticker"]
        assert "decide.ticker failed (StoreError" in body["checks"]["tasks"]["detail"]
        clock.advance(FAILED_RECENTLY_S + 1)  # restarted and quiet since
        body, code = await readiness(rt)
        assert code == 200 and body["checks"]["tasks"] == {"ok": True}
    finally:
        await bus.close()
        await store.close()


async def ends_early(_rt: Runtime, _stop: asyncio.Event) -> None:
    await asyncio.sleep(0.01)


async def test_a_role_that_ends_on_its_own_exits_non_zero(tmp_path: Path) -> None:
    settings = Settings(store=StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    assert await asyncio.wait_for(run_roles(settings, {"early": ends_early}), 30) == 1
