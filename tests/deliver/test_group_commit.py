"""Group commit: callers ready together share one transaction; one failing item fails only
its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from consumers.deliver.group_commit import GroupCommit


class Recorder:
    def __init__(self, poison: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.poison = poison

    async def apply(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)  # a transaction in progress: later callers queue meanwhile
        if self.poison in items:
            raise ValueError(f"bad item {self.poison}")
        return [i * 10 for i in items]


async def test_callers_ready_together_commit_together_and_later_ones_in_the_next() -> None:
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply, max_batch=100)
    first = [asyncio.create_task(gc.submit(i)) for i in range(50)]
    await asyncio.sleep(0.001)  # the first transaction is running
    later = [asyncio.create_task(gc.submit(i)) for i in range(50, 80)]
    assert await asyncio.gather(*first, *later) == [i * 10 for i in range(80)]
    assert r.batches == [list(range(50)), list(range(50, 80))]


async def test_a_lone_caller_is_not_held_back() -> None:
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply)
    assert await gc.submit(7) == 70
    assert r.batches == [[7]]


async def test_batches_are_bounded() -> None:
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply, max_batch=8)
    await asyncio.gather(*(gc.submit(i) for i in range(20)))
    assert [len(b) for b in r.batches] == [8, 8, 4]


async def test_one_bad_item_fails_only_its_caller() -> None:
    r = Recorder(poison=3)
    gc: GroupCommit[int, int] = GroupCommit(r.apply)
    results = await asyncio.gather(*(gc.submit(i) for i in range(6)), return_exceptions=True)
    assert [x for x in results if not isinstance(x, Exception)] == [0, 10, 20, 40, 50]
    assert isinstance(results[3], ValueError)
    # The batch failed whole, then every item was tried alone.
    assert r.batches[0] == list(range(6)) and r.batches[1:] == [[i] for i in range(6)]


async def test_a_store_outage_reaches_every_caller() -> None:
    async def down(items: Sequence[int]) -> list[int]:
        raise ConnectionRefusedError("store down")

    gc: GroupCommit[int, int] = GroupCommit(down)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.gather(*(gc.submit(i) for i in range(3)))


async def test_after_a_commit_the_runner_lingers_so_a_trickle_shares_the_next() -> None:
    # Items arriving one at a time after a commit (sends finishing one by one) wait out the
    # linger together instead of each starting a transaction of its own.
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply, linger_s=0.05)
    burst = [asyncio.create_task(gc.submit(i)) for i in range(2)]
    await asyncio.sleep(0.02)  # the burst's commit is done (0.01 s); the runner lingers
    trickle = []
    for i in range(2, 7):
        trickle.append(asyncio.create_task(gc.submit(i)))
        await asyncio.sleep(0.002)
    assert await asyncio.gather(*burst, *trickle) == [i * 10 for i in range(7)]
    assert r.batches == [[0, 1], [2, 3, 4, 5, 6]]


async def test_a_lone_item_is_not_followed_by_a_linger() -> None:
    # A single alert: its claim commits alone, and its outcome right after is not held.
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply, linger_s=10.0)
    assert await gc.submit(1) == 10
    assert await asyncio.wait_for(gc.submit(2), 1.0) == 20
    assert r.batches == [[1], [2]]


async def test_without_linger_each_item_of_a_trickle_commits_alone() -> None:
    r = Recorder()
    gc: GroupCommit[int, int] = GroupCommit(r.apply)
    for i in range(3):
        await gc.submit(i)
        await asyncio.sleep(0.002)
    assert r.batches == [[0], [1], [2]]
