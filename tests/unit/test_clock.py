"""The injectable clock: manual time moves only when told, sleepers wake in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from monitor.clock import ManualClock, SystemClock

T0 = datetime(2022, 9, 6, 17, 0, tzinfo=UTC)


async def test_sleepers_wake_in_deadline_order_when_time_advances() -> None:
    clock = ManualClock(T0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{(clock.now() - T0).total_seconds():g}")

    tasks = [asyncio.create_task(sleeper("b", 10)), asyncio.create_task(sleeper("a", 5))]
    await asyncio.sleep(0)
    assert clock.next_deadline() == T0 + timedelta(seconds=5)  # both asleep, "a" first
    clock.advance(4)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(6)
    await asyncio.gather(*tasks)
    assert woke == ["a@10", "b@10"]


async def test_auto_advance_runs_a_day_of_sleeps_instantly() -> None:
    clock = ManualClock(T0, auto_advance=True)
    ticks = []
    for _ in range(288):  # one day of 5-minute polls
        await clock.sleep(300)
        ticks.append(clock.now())
    assert clock.now() == T0 + timedelta(days=1)
    assert ticks == sorted(ticks)


def test_manual_clock_refuses_naive_start_and_going_back() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2022, 9, 6))
    clock = ManualClock(T0)
    with pytest.raises(ValueError):
        clock.set(T0 - timedelta(seconds=1))


def test_system_clock_is_aware() -> None:
    assert SystemClock().now().tzinfo is not None
